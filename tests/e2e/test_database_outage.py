"""A database outage is a prompt 503 with Retry-After, and the ledger recovers when it ends.

A TCP proxy between the ledger and PostgreSQL plays the outage: it closes every connection and
stops listening, so each new connection is refused. A request then waits for the connection
pool's timeout (POSTGRES_CONNECT_TIMEOUT, 3 s) once and answers 503; the library's own retry
(10 attempts) would otherwise repeat that wait ten times. When the proxy listens again, the next
request succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import TypeAdapter

from ledger.api.app import create_app
from ledger.application import Ledger
from ledger.domain.errors import UnavailableError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.settings import Settings
from ledger.storage.keys import KeyStore
from tests.conftest import FrozenClock, bearer, envelope
from tests.support.proxy import PgProxy

pytestmark = pytest.mark.postgres

# The pool's wait (3 s) plus slack; the library's retries alone would take about 30 s.
PROMPT = 6.0
PROBLEM = "application/problem+json"
ENVELOPE: TypeAdapter[Any] = TypeAdapter(Envelope)
T = TypeVar("T")


def envelopes(*bodies: dict[str, Any]) -> list[EnvelopeBase]:
    return [ENVELOPE.validate_python(b) for b in bodies]


def timed(call: Callable[[], T]) -> tuple[T, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


@pytest.fixture
def client(proxied: Ledger, clock: FrozenClock) -> Iterator[TestClient]:
    key, _ = KeyStore.of(proxied.store, "postgresql").create(
        "outage", "admin", frozenset(), clock()
    )
    app = create_app(Settings(database_url="sqlite:///unused"), ledger=proxied)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(key)) as client:
        yield client


def assert_prompt_503(response: Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503
    assert elapsed < PROMPT, f"the 503 took {elapsed:.1f} s"


def test_during_an_outage_the_api_answers_503_promptly_and_recovers_after(
    client: TestClient, proxy: PgProxy
) -> None:
    first = envelope()
    assert client.post("/v1/events", json=first).status_code == 201

    proxy.refuse()
    held = envelope("inspection.recorded")
    for method, path, body in (
        ("POST", "/v1/events", held),
        ("GET", "/v1/events?after=0", None),
        ("GET", "/healthz", None),
    ):
        response, elapsed = timed(partial(client.request, method, path, json=body))
        assert_prompt_503(response, elapsed)

    proxy.heal()
    # The very next request succeeds: the pool does not sit out a reconnection backoff.
    retried, elapsed = timed(lambda: client.post("/v1/events", json=held))
    assert retried.status_code == 201, retried.text
    assert elapsed < 1.0, f"the first request after the outage took {elapsed:.1f} s"
    assert client.get("/healthz").json()["position"] == 2
    feed = client.get("/v1/events?after=0").json()["events"]
    assert [e["event_id"] for e in feed] == [first["event_id"], held["event_id"]]


def test_every_read_and_append_of_the_ledger_is_unavailable_promptly(
    proxied: Ledger, proxy: PgProxy
) -> None:
    proxied.append(envelopes(envelope()), source="test")
    proxy.refuse()
    calls: list[Callable[[], object]] = [
        lambda: proxied.append(envelopes(envelope("inspection.recorded")), source="test"),
        lambda: proxied.feed(0, 10),
        lambda: proxied.stream("batch", "B-2026-0142"),
        proxied.last_position,
    ]
    for call in calls:
        start = time.monotonic()
        with pytest.raises(UnavailableError):
            call()
        assert time.monotonic() - start < PROMPT
    proxy.heal()
    # Twelve seconds into the outage, the pool's default reconnection backoff would wait several
    # more seconds before its next attempt: the ledger reconnects on demand instead.
    position, elapsed = timed(proxied.last_position)
    assert position == 1
    assert elapsed < 1.0, f"the first read after the outage took {elapsed:.1f} s"


def test_an_outage_in_the_middle_of_an_append_is_prompt_and_stores_nothing(
    proxied: Ledger, proxy: PgProxy
) -> None:
    """The connection dies inside the insert's transaction: the library's retry of the insert
    then finds no database, and gives up at once instead of waiting nine more pool timeouts."""
    proxied.append(envelopes(envelope()), source="test")
    sent = envelope("inspection.recorded")
    proxy.refuse_on("NOTIFY")  # sent after LOCK TABLE, before the inserts run

    start = time.monotonic()
    with pytest.raises(UnavailableError):
        proxied.append(envelopes(sent), source="test")
    assert time.monotonic() - start < PROMPT
    assert proxy.sql_seen()[-1].startswith("NOTIFY"), "the outage began elsewhere"

    proxy.heal()
    assert [r.position for r in proxied.feed(0, 10)] == [1]  # rolled back, nothing half-written
    result = proxied.append(envelopes(sent), source="test")
    assert result.created and [r["version"] for r in result.receipts] == [2]
    assert [r.position for r in proxied.feed(0, 10)] == [1, 2]
