"""No department changes the facts or targets that judge it: who may correct an event, and who
may set policy, targets and revenue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ledger.application import Ledger
from ledger.domain.access import LEDGER_SOURCE
from ledger.domain.events import ENVELOPE_MODELS
from tests.conftest import FrozenClock, bearer, envelope

ATTRIBUTION = {"category": "operator", "responsible_department": "production", "controllable": True}
BLAME_PROCUREMENT = {**ATTRIBUTION, "category": "material", "responsible_department": "procurement"}


def hours_ago(clock: FrozenClock, hours: float) -> str:
    return (clock.now - timedelta(hours=hours)).isoformat()


def attribution(clock: FrozenClock, department: str = "quality") -> dict[str, Any]:
    """Quality's finding on batch B-1: production's operator caused it."""
    return envelope(
        "cause.attributed",
        stream_id="B-1",
        department=department,
        occurred_at=hours_ago(clock, 2),
        data=ATTRIBUTION,
    )


def correction(
    clock: FrozenClock,
    corrected: dict[str, Any],
    data: dict[str, Any],
    department: str,
) -> dict[str, Any]:
    return envelope(
        "event.corrected",
        stream_id=corrected["stream"]["id"],
        stream_type=corrected["stream"]["type"],
        department=department,
        occurred_at=hours_ago(clock, 1),
        data={"corrects_event_id": corrected["event_id"], "reason": "wrong", "data": data},
    )


@pytest.fixture
def attributed(client: TestClient, clock: FrozenClock) -> dict[str, Any]:
    """Batch B-1, registered by production, and quality's attribution of its defect."""
    registered = envelope(stream_id="B-1", occurred_at=hours_ago(clock, 3))
    found = attribution(clock)
    r = client.post("/v1/events", json={"events": [registered, found]})
    assert r.status_code == 201, r.text
    return found


def stored_types(client: TestClient) -> list[str]:
    return [e["type"] for e in client.get("/v1/events").json()["events"]]


def refused(response: Any, *words: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


def test_a_department_cannot_correct_another_departments_attribution_to_move_the_blame(
    client: TestClient,
    clock: FrozenClock,
    make_key: Callable[..., str],
    attributed: dict[str, Any],
) -> None:
    production = bearer(make_key("integrator", ["production"]))
    moved = correction(clock, attributed, BLAME_PROCUREMENT, "production")
    refused(client.post("/v1/events", json=moved, headers=production), "quality", "production")
    as_quality = correction(clock, attributed, BLAME_PROCUREMENT, "quality")
    refused(client.post("/v1/events", json=as_quality, headers=production), "quality")
    assert stored_types(client) == ["batch.registered", "cause.attributed"]


def test_the_department_that_recorded_an_event_may_correct_it(
    client: TestClient,
    clock: FrozenClock,
    make_key: Callable[..., str],
    attributed: dict[str, Any],
) -> None:
    quality = bearer(make_key("integrator", ["quality"]))
    fixed = correction(clock, attributed, BLAME_PROCUREMENT, "quality")
    assert client.post("/v1/events", json=fixed, headers=quality).status_code == 201


def test_even_an_admin_correction_has_an_actor_of_the_corrected_events_department(
    client: TestClient, clock: FrozenClock, attributed: dict[str, Any]
) -> None:
    as_production = correction(clock, attributed, BLAME_PROCUREMENT, "production")
    refused(client.post("/v1/events", json=as_production), "actor", "quality", "production")
    as_quality = correction(clock, attributed, BLAME_PROCUREMENT, "quality")
    assert client.post("/v1/events", json=as_quality).status_code == 201


def test_a_correction_of_an_event_in_the_same_request_is_judged_by_that_event(
    client: TestClient, clock: FrozenClock, make_key: Callable[..., str]
) -> None:
    registered = envelope(stream_id="B-1", occurred_at=hours_ago(clock, 3))
    by_quality = attribution(clock)
    blamed = correction(clock, by_quality, BLAME_PROCUREMENT, "production")
    r = client.post("/v1/events", json={"events": [registered, by_quality, blamed]})
    refused(r, "events[2]", "quality", "production")
    assert stored_types(client) == []
    mes = bearer(make_key("integrator", ["production"]))
    own = attribution(clock, "production")
    fixed = correction(clock, own, BLAME_PROCUREMENT, "production")
    r = client.post("/v1/events", json={"events": [registered, own, fixed]}, headers=mes)
    assert r.status_code == 201, r.text


def test_a_correction_of_an_event_that_is_not_stored_is_refused_by_the_stream_rule(
    client: TestClient, clock: FrozenClock, attributed: dict[str, Any]
) -> None:
    ghost = {**attributed, "event_id": str(uuid.uuid4())}
    r = client.post("/v1/events", json=correction(clock, ghost, ATTRIBUTION, "quality"))
    assert r.status_code == 409, r.text
    assert ghost["event_id"] in r.json()["detail"]


def judging_event(event_type: str, clock: FrozenClock, department: str) -> dict[str, Any]:
    data = {
        "target.set": {
            "period": "2026",
            "level": "department",
            "department": "sales",
            "kpi": "complaint_rate",
            "direction": "at_most",
            "target": 1,
        },
        "policy.set": {"incentives": []},
        "revenue.recorded": {"period": "2026-11", "amount": "1.00", "currency": "CNY"},
    }[event_type]
    return envelope(
        event_type,
        stream_id="P-2026",
        stream_type="plan",
        department=department,
        occurred_at=hours_ago(clock, 1),
        data=data,
    )


@pytest.mark.parametrize("event_type", ["policy.set", "target.set", "revenue.recorded"])
def test_only_an_admin_or_management_key_sets_what_departments_are_judged_by(
    event_type: str, client: TestClient, clock: FrozenClock, make_key: Callable[..., str]
) -> None:
    production = bearer(make_key("integrator", ["production"]))
    r = client.post(
        "/v1/events", json=judging_event(event_type, clock, "production"), headers=production
    )
    refused(r, event_type, "admin", "management")
    assert stored_types(client) == []
    management = bearer(make_key("integrator", ["management"]))
    r = client.post(
        "/v1/events", json=judging_event(event_type, clock, "management"), headers=management
    )
    assert r.status_code == 201, r.text
    r = client.post("/v1/events", json=judging_event(event_type, clock, "quality"))
    assert r.status_code == 201, r.text


def test_a_correction_of_a_target_needs_a_key_that_may_set_targets(
    client: TestClient, clock: FrozenClock, make_key: Callable[..., str]
) -> None:
    target = judging_event("target.set", clock, "quality")  # an admin's, for a quality director
    assert client.post("/v1/events", json=target).status_code == 201
    looser = {**target["data"], "target": 100}
    quality = bearer(make_key("integrator", ["quality"]))
    r = client.post(
        "/v1/events", json=correction(clock, target, looser, "quality"), headers=quality
    )
    refused(r, "target.set", "management")
    board = bearer(make_key("integrator", ["management", "quality"]))
    r = client.post("/v1/events", json=correction(clock, target, looser, "quality"), headers=board)
    assert r.status_code == 201, r.text


def test_no_integrator_corrects_an_escalation_the_ledger_raised(
    client: TestClient, ledger: Ledger, clock: FrozenClock, make_key: Callable[..., str]
) -> None:
    assert client.post("/v1/events", json=envelope(stream_id="B-1")).status_code == 201
    raised = envelope(
        "escalation.raised",
        stream_id="B-1",
        department="management",
        occurred_at=hours_ago(clock, 1),
        data={
            "notification_event_id": str(uuid.uuid4()),
            "department": "production",
            "escalated_to": "production_director",
            "due_at": hours_ago(clock, 1),
        },
    )
    model = ENVELOPE_MODELS["escalation.raised"].model_validate(raised)
    ledger.append([model], source=LEDGER_SOURCE, system=True)
    management = bearer(make_key("integrator", ["management"]))
    undone = {**raised["data"], "department": "sales"}
    r = client.post(
        "/v1/events", json=correction(clock, raised, undone, "management"), headers=management
    )
    refused(r, "escalation.raised")
