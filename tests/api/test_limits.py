"""Bad input never hurts: nesting, methods that would change events, and the per-key rate."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.limits import RateLimit
from ledger.api.server import HttpLimits, ServerConfig, server_config
from ledger.application import Ledger
from ledger.settings import Settings
from tests.conftest import bearer, envelope

PROBLEM = "application/problem+json"
JSON = {"content-type": "application/json"}


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def test_json_nested_deeper_than_32_levels_gets_422_however_deep(client: TestClient) -> None:
    for levels in (33, 1000, 100_000):
        r = client.post("/v1/events", content=nested(levels), headers=JSON)
        assert r.status_code == 422, (levels, r.status_code)
        assert r.headers["content-type"] == PROBLEM
        assert "nested deeper than 32" in r.json()["detail"] or levels > 1000


def test_deep_attributes_are_refused_but_32_levels_of_body_are_read(client: TestClient) -> None:
    deep: object = "leaf"
    for _ in range(40):
        deep = {"a": deep}
    r = client.post("/v1/events", content=orjson.dumps(envelope(attributes=deep)), headers=JSON)
    assert r.status_code == 422
    assert "nested deeper than 32" in r.json()["detail"]
    # 32 levels of body parse, and are then judged by the schema (a list is no envelope).
    r = client.post("/v1/events", content=nested(32), headers=JSON)
    assert r.status_code == 422
    assert "nested deeper" not in r.json()["detail"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/v1/events", "/v1/streams/batch/B-2026-0142"])
def test_no_route_updates_or_deletes_an_event(client: TestClient, method: str, path: str) -> None:
    client.post("/v1/events", json=envelope())
    r = client.request(method, path, json=envelope())
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert "GET" in r.headers["allow"]
    assert "PUT" not in r.headers["allow"] and "DELETE" not in r.headers["allow"]
    assert len(client.get("/v1/events").json()["events"]) == 1


def test_405_names_every_method_the_path_allows(client: TestClient) -> None:
    assert client.delete("/v1/events").headers["allow"] == "GET, POST"


@pytest.fixture
def limited(ledger: Ledger) -> Iterator[TestClient]:
    app = create_app(Settings(database_url="sqlite:///unused", rate_limit=3), ledger=ledger)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_a_key_over_its_rate_gets_429_with_retry_after(
    limited: TestClient, make_key: Callable[..., str]
) -> None:
    busy, calm = bearer(make_key("director")), bearer(make_key("director"))
    statuses = [limited.get("/v1/events", headers=busy).status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429]
    r = limited.get("/v1/events", headers=busy)
    assert r.headers["content-type"] == PROBLEM
    assert 1 <= int(r.headers["retry-after"]) <= 1
    assert limited.get("/v1/events", headers=calm).status_code == 200  # the limit is per key


def test_the_rate_limit_is_off_at_zero(client: TestClient) -> None:
    assert all(client.get("/healthz").status_code == 200 for _ in range(3))
    assert all(client.get("/v1/events").status_code == 200 for _ in range(60))


def test_a_rate_below_one_per_second_spreads_one_request_over_a_longer_window() -> None:
    limit = RateLimit(0.25)
    assert (limit.item.amount, limit.item.multiples) == (1, 4)
    limit.hit("k")
    with pytest.raises(Exception) as refused:
        limit.hit("k")
    assert getattr(refused.value, "status_code", None) == 429
    assert 1 <= int(getattr(refused.value, "headers", {})["Retry-After"]) <= 4
    assert RateLimit.from_setting(0) is None


def test_a_path_with_a_trailing_slash_is_404_not_a_redirect(client: TestClient) -> None:
    # A redirect's Location would be built from the Host header, which anyone can send.
    r = client.get("/v1/events/", headers={"Host": "evil.example"}, follow_redirects=False)
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM
    assert "location" not in r.headers


def test_the_server_trusts_proxy_headers_only_from_the_addresses_configured() -> None:
    def config(**settings: str) -> ServerConfig:
        return server_config(
            Settings(database_url="sqlite:///unused", **settings),
            host="127.0.0.1",
            port=8000,
            workers=1,
        )

    assert config().proxy_headers is False  # uvicorn alone would trust 127.0.0.1
    trusted = config(forwarded_allow_ips="10.0.0.5, 10.1.0.0/16")
    assert trusted.proxy_headers is True
    assert trusted.forwarded_allow_ips == "10.0.0.5, 10.1.0.0/16"


def test_the_http_limits_come_from_the_settings() -> None:
    settings = Settings(
        database_url="sqlite:///unused",
        max_header_bytes=4096,
        max_headers=30,
        read_timeout_seconds=2.5,
        keep_alive_seconds=3,
        max_connections=50,
    )
    config = server_config(settings, host="127.0.0.1", port=8000, workers=1)
    assert config.limits == HttpLimits(
        max_header_bytes=4096, max_headers=30, read_timeout=2.5, max_connections=50
    )
    assert config.timeout_keep_alive == 3
    assert Settings(database_url="sqlite:///unused").max_header_bytes == 16 * 1024
