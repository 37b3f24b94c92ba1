"""Who may do what, cell by cell: every route × every role × own/other department (SPEC §5).

`spec_allows` reads SPEC §5's role table literally, by method and path, independently of
`ledger.api.auth`; the routes come from the app itself, so a route added later is checked for
every role as soon as it exists, and one that declares no permission fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.api.auth import permission_of
from ledger.api.routing import LedgerRoute
from ledger.application import Ledger
from ledger.domain.access import ROLE_PERMISSIONS, ROLES
from ledger.settings import Settings
from ledger.storage.database import Database
from ledger.storage.keys import KeyStore
from tests.conftest import ADMIN_KEY_NAME, FrozenClock, bearer, envelope

PROBLEM = "application/problem+json"
PUBLIC = {
    "/healthz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/docs/assets",  # the documentation pages' scripts and fonts, served offline
    "/redoc",
}
OWN, OTHER = "production", "sales"


def spec_allows(role: str, method: str, path: str, *, own_department: bool) -> bool:
    """SPEC §5's role table."""
    reads = method == "GET"
    if role == "admin":
        return True
    if role == "integrator":
        if (method, path) == ("POST", "/v1/events"):
            return own_department
        return reads and (path == "/v1/events" or path.startswith("/v1/streams/"))
    if role == "director":
        return reads and not path.startswith(("/v1/verify", "/v1/digest", "/v1/keys"))
    if role == "hr":
        return reads and path.startswith(("/v1/kpis", "/v1/sla"))
    if role == "auditor":
        return reads and not path.startswith("/v1/keys")
    raise AssertionError(f"SPEC names no role {role!r}")


def api_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route under /v1."""
    app = create_app(Settings(database_url="sqlite:///unused"))
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path and route.path.startswith("/v1/")
        for method in route.methods or ()
    )


ROUTES = api_routes()
SAMPLE_IDS = {"complaint_id": "C-SEED", "batch_id": "B-SEED", "stream_type": "batch"}


def sample_request(method: str, template: str, department: str) -> tuple[str, Any]:
    """A request the route would serve: the seeded streams, an append for `department`."""
    if (method, template) == ("POST", "/v1/events"):
        return "/v1/events", envelope(stream_id=f"B-{uuid.uuid4().hex[:8]}", department=department)
    path = template.replace("{stream_id}", "B-SEED")
    for name, value in SAMPLE_IDS.items():
        path = path.replace("{" + name + "}", value)
    if "{" in path:  # a route added later: any well-formed id exercises its authorization
        path = path.split("{")[0] + "X-1" + path.split("}", 1)[1]
    return path, None


@pytest.fixture
def seeded(client: TestClient) -> TestClient:
    seed = [
        envelope(stream_id="B-SEED"),
        envelope("complaint.filed", stream_id="C-SEED", data=None),
    ]
    seed[1]["data"]["batch_ids"] = ["B-SEED"]
    assert client.post("/v1/events", json={"events": seed}).status_code == 201
    return client


def outcome(response: Any) -> str:
    if response.status_code in (401, 403):
        assert response.headers["content-type"] == PROBLEM
        return {401: "unauthenticated", 403: "forbidden"}[response.status_code]
    assert response.status_code < 500, response.text
    return "allowed"


def test_every_role_a_key_may_have_has_its_permissions() -> None:
    assert tuple(ROLE_PERMISSIONS) == ROLES


def test_every_api_route_declares_its_permission_and_checks_it_before_the_body() -> None:
    app = create_app(Settings(database_url="sqlite:///unused"))
    for route in iter_route_contexts(app.routes):
        if route.path in PUBLIC:
            continue
        assert route.path.startswith("/v1/"), f"{route.path}: add it to PUBLIC or put it in /v1"
        assert permission_of(route.dependant) is not None, f"{route.path} declares no permission"
        assert isinstance(route.original_route, LedgerRoute), f"{route.path}: route_class?"


@pytest.mark.parametrize("role", ROLES)
def test_the_authorization_matrix_matches_the_spec_for(
    role: str, seeded: TestClient, make_key: Callable[..., str]
) -> None:
    key = bearer(make_key(role, departments=[OWN] if role == "integrator" else []))
    expected: dict[tuple[str, str, str], str] = {}
    actual: dict[tuple[str, str, str], str] = {}
    for method, template in ROUTES:
        for department in (OWN, OTHER):
            cell = (method, template, department)
            own = department == OWN
            expected[cell] = (
                "allowed"
                if spec_allows(role, method, template, own_department=own)
                else "forbidden"
            )
            path, body = sample_request(method, template, department)
            response = seeded.request(method, path, json=body, headers=key)
            actual[cell] = outcome(response)
            if actual[cell] == "allowed" and template in SAMPLE_TEMPLATES:
                assert response.status_code in (200, 201), (cell, response.text)
    assert actual == expected


SAMPLE_TEMPLATES = {
    "/v1/events",
    "/v1/streams/{stream_type}/{stream_id}",
    "/v1/complaints/{complaint_id}/timeline",
    "/v1/batches/{batch_id}/timeline",
    "/v1/complaints/{complaint_id}/responsibility",
    "/v1/sla",
}


def test_the_source_of_an_event_is_the_name_of_the_key_that_appended_it(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    mes = bearer(make_key("integrator", departments=["production"], name="mes-line-2"))
    assert client.post("/v1/events", json=envelope(), headers=mes).status_code == 201
    client.post("/v1/events", json=envelope("rework.recorded"))
    sources = [e["source"] for e in client.get("/v1/events").json()["events"]]
    assert sources == ["mes-line-2", ADMIN_KEY_NAME]


def test_an_integrator_may_not_append_for_another_department_even_inside_a_batch(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    mes = bearer(make_key("integrator", departments=["production", "quality"]))
    mixed = [envelope(stream_id="B-1"), envelope(stream_id="B-2", department="sales")]
    r = client.post("/v1/events", json={"events": mixed}, headers=mes)
    assert r.status_code == 403
    assert "events[1]" in r.json()["detail"] and "sales" in r.json()["detail"]
    assert client.get("/v1/events").json()["events"] == []
    mine = [envelope(stream_id="B-1"), envelope(stream_id="B-2", department="quality")]
    assert client.post("/v1/events", json={"events": mine}, headers=mes).status_code == 201


def test_an_integrator_can_never_append_an_escalation(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    mes = bearer(make_key("integrator", departments=["production"]))
    client.post("/v1/events", json=envelope())
    escalation = envelope(
        "escalation.raised",
        data={
            "notification_event_id": str(uuid.uuid4()),
            "department": "production",
            "escalated_to": "production_director",
            "due_at": "2026-11-03T08:15:00+08:00",
        },
    )
    r = client.post("/v1/events", json=escalation, headers=mes)
    assert r.status_code == 403
    assert "escalation.raised" in r.json()["detail"]


def anonymous(client: TestClient) -> TestClient:
    return TestClient(client.app, raise_server_exceptions=False)


def test_a_missing_malformed_unknown_or_revoked_key_gets_401_on_every_route(
    client: TestClient, make_key: Callable[..., str], keys: Any, clock: Any
) -> None:
    revoked = make_key("admin", name="gone")
    keys.revoke("gone", clock())
    good = make_key("admin")
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    headers: dict[str, dict[str, str]] = {
        "missing": {},
        "empty": {"Authorization": ""},
        "basic scheme": {"Authorization": f"Basic {good}"},
        "bearer without key": {"Authorization": "Bearer "},
        "malformed": bearer("not-a-key"),
        "unknown": bearer("ql_0123456789ab_" + "A" * 43),
        "right id, wrong secret": bearer(tampered),
        "revoked": bearer(revoked),
    }
    outsider = anonymous(client)
    for method, template in ROUTES:
        path, body = sample_request(method, template, OWN)
        for case, header in headers.items():
            r = outsider.request(method, path, json=body, headers=header)
            assert r.status_code == 401, (method, path, case, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer"), case
            assert r.headers["content-type"] == PROBLEM
    assert client.get("/v1/events").json()["events"] == []


def test_the_key_is_checked_before_the_body_is_read(client: TestClient) -> None:
    r = anonymous(client).post(
        "/v1/events", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 401


def test_health_and_metrics_need_no_key(client: TestClient) -> None:
    outsider = anonymous(client)
    assert outsider.get("/healthz").status_code == 200
    assert outsider.get("/metrics").status_code == 200


def test_a_key_revoked_by_another_process_is_refused_on_the_very_next_request(
    client: TestClient,
    make_key: Callable[..., str],
    database: Database,
    clock: FrozenClock,
) -> None:
    # `ledger keys revoke` runs in another process: a key store on connections of its own.
    mes = bearer(make_key("integrator", departments=["production"], name="mes"))
    assert client.post("/v1/events", json=envelope(stream_id="B-1"), headers=mes).status_code == 201
    assert client.get("/v1/events", headers=mes).status_code == 200  # the key cache holds it
    other = Ledger(database, clock=clock, pool_size=1)
    try:
        assert KeyStore.of(other.store, database.kind).revoke("mes", clock())
    finally:
        other.close()
    late = envelope("rework.recorded", stream_id="B-1")
    r = client.post("/v1/events", json=late, headers=mes)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == PROBLEM
    assert client.get("/v1/events", headers=mes).status_code == 401
    assert stored_types(client) == ["batch.registered"]


def test_a_body_the_short_way_does_not_take_is_refused_for_a_revoked_key_too(
    client: TestClient, make_key: Callable[..., str], keys: KeyStore, clock: FrozenClock
) -> None:
    mes = bearer(make_key("integrator", departments=["production"], name="mes"))
    assert client.post("/v1/events", json=envelope(stream_id="B-1"), headers=mes).status_code == 201
    keys.revoke("mes", clock())
    for body in (b"{not json", b'{"type": "rework.recorded"}'):
        r = client.post(
            "/v1/events", content=body, headers={**mes, "content-type": "application/json"}
        )
        assert r.status_code == 401, r.text


def stored_types(client: TestClient) -> list[str]:
    return [e["type"] for e in client.get("/v1/events").json()["events"]]


def test_a_key_revoked_before_its_first_use_is_refused_at_once(
    client: TestClient, make_key: Callable[..., str], keys: Any, clock: Any
) -> None:
    key = bearer(make_key("director", name="dir"))
    keys.revoke("dir", clock())
    assert client.get("/v1/events", headers=key).status_code == 401


@pytest.mark.parametrize(
    "field, value",
    [
        ("source", "someone-else"),
        ("recorded_at", "2026-11-02T08:15:00Z"),
        ("position", 1),
        ("version", 1),
        ("hash", "0" * 64),
        ("prev_hash", "0" * 64),
    ],
)
def test_a_sender_cannot_set_what_the_ledger_stamps(
    client: TestClient, field: str, value: Any
) -> None:
    for body in ({**envelope(), field: value}, {"events": [{**envelope(), field: value}]}):
        r = client.post("/v1/events", json=body)
        assert r.status_code == 422, r.text
        assert any(e["field"].endswith(field) for e in r.json()["errors"]), r.json()
    assert client.get("/v1/events").json()["events"] == []
