"""Responsibility and SLA reads over HTTP, on SQLite and PostgreSQL: backdating by key role,
reopened complaints, corrections and policy changes (SPEC §7.2, §7.3, §8)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import FrozenClock, bearer, envelope


def at(clock: FrozenClock, hours: float) -> str:
    """A time `hours` before the ledger's clock (which stands still in these tests)."""
    return (clock.now - timedelta(hours=hours)).isoformat()


def post(client: TestClient, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    r = client.post("/v1/events", json=body, headers=bearer(key) if key else None)
    assert r.status_code in (200, 201), r.text
    return r.json()["receipts"][0]  # type: ignore[no-any-return]


def complaint(client: TestClient, clock: FrozenClock, hours_ago: float) -> None:
    post(client, envelope("complaint.filed", stream_id="C-1", department="sales",
                          occurred_at=at(clock, hours_ago)))  # fmt: skip


def notify(action: str, to: str, when: str, **kw: Any) -> dict[str, Any]:
    return envelope("notification.sent", stream_id="C-1", stream_type="complaint",
                    department="quality", occurred_at=when,
                    data={"to_department": to, "action": action}, **kw)  # fmt: skip


def items(client: TestClient, **params: str) -> list[dict[str, Any]]:
    return client.get("/v1/sla", params=params).json()["items"]  # type: ignore[no-any-return]


def test_a_backdated_answer_from_an_integrator_counts_when_it_was_recorded(
    client: TestClient, clock: FrozenClock, make_key: Callable[..., str]
) -> None:
    complaint(client, clock, 100)
    post(client, notify("investigate", "production", at(clock, 90)))
    mes = make_key("integrator", ["production"])
    # claims to have answered 80 h ago (in time), but only tells the ledger now
    answer = envelope("investigation.reported", stream_id="C-1", stream_type="complaint",
                      occurred_at=at(clock, 80))  # fmt: skip
    receipt = post(client, answer, key=mes)
    (item,) = items(client)
    assert item["state"] == "met_late"
    assert item["backdated"] is True
    recorded = datetime.fromisoformat(receipt["recorded_at"])
    assert datetime.fromisoformat(item["fulfilled_at"]) == recorded - timedelta(hours=1)


def test_the_same_answer_from_an_admin_key_counts_at_its_occurred_at(
    client: TestClient, clock: FrozenClock
) -> None:
    complaint(client, clock, 100)
    post(client, notify("investigate", "production", at(clock, 90)))
    post(client, envelope("investigation.reported", stream_id="C-1", stream_type="complaint",
                          occurred_at=at(clock, 80)))  # fmt: skip
    (item,) = items(client)
    assert item["state"] == "met"
    assert item["backdated"] is True  # still marked: recorded 80 h after it occurred


def test_a_reopened_complaint_gets_new_deadlines_and_closing_fulfils_confirmation(
    client: TestClient, clock: FrozenClock
) -> None:
    complaint(client, clock, 100)
    post(client, notify("confirm_customer", "sales", at(clock, 90)))
    post(client, envelope("complaint.closed", stream_id="C-1", department="sales",
                          occurred_at=at(clock, 80)))  # fmt: skip
    post(client, envelope("complaint.reopened", stream_id="C-1", department="sales",
                          occurred_at=at(clock, 50)))  # fmt: skip
    post(client, notify("investigate", "quality", at(clock, 40)))
    first, second = items(client)
    assert (first["action"], first["state"]) == ("confirm_customer", "met")
    assert (second["action"], second["state"]) == ("investigate", "breached")
    chain = client.get("/v1/complaints/C-1/responsibility").json()
    assert chain["breaches"] == {"sales": 0, "quality": 1}
    assert chain["holding_seconds"]["quality"] == 40 * 3600  # open until now


def test_a_policy_change_applies_to_notifications_recorded_after_it(
    client: TestClient, clock: FrozenClock
) -> None:
    complaint(client, clock, 100)
    post(client, notify("investigate", "production", at(clock, 30)))
    policy = {"sla": {"windows_hours": {"investigate": 48}, "breach_penalty_points": 7}}
    post(client, envelope("policy.set", stream_id="P-1", stream_type="plan",
                          department="management", data=policy))  # fmt: skip
    post(client, notify("investigate", "quality", at(clock, 30)))
    before, after = sorted(items(client), key=lambda i: i["department"])
    assert (before["department"], before["state"], before["penalty_points"]) == (
        "production", "breached", 2,
    )  # fmt: skip
    assert (after["department"], after["state"]) == ("quality", "open")


def test_a_corrected_due_time_moves_the_deadline_from_the_correction_on(
    client: TestClient, clock: FrozenClock
) -> None:
    complaint(client, clock, 100)
    sent = notify("rectify", "production", at(clock, 90))
    sent["data"]["due_at"] = at(clock, 60)
    post(client, sent)
    (item,) = items(client)
    assert item["state"] == "breached"
    fix = envelope("event.corrected", stream_id="C-1", stream_type="complaint",
                   department="quality",
                   data={"corrects_event_id": sent["event_id"], "reason": "agreed extension",
                         "data": {**sent["data"], "due_at": at(clock, -24)}})  # fmt: skip
    receipt = post(client, fix)
    (item,) = items(client)
    assert item["state"] == "open"
    # as of just before the correction was recorded, the old deadline had passed
    just_before = items(client, as_of=receipt["recorded_at"].replace("Z", "+00:00"))
    assert just_before[0]["state"] == "open"  # the correction is counted at its own recorded_at


def test_escalations_are_raised_once_by_the_watcher(client: TestClient, clock: FrozenClock) -> None:
    from ledger.readmodels.projections import Projections
    from ledger.watcher import tick

    complaint(client, clock, 100)
    post(client, notify("investigate", "production", at(clock, 90)))
    projections = Projections(client.app.state.ledger)  # type: ignore[attr-defined]
    assert tick(projections, clock.now) == 1
    assert tick(projections, clock.now) == 0
    (item,) = items(client)
    assert item["escalated"] is True
    events = client.get("/v1/complaints/C-1/timeline").json()["events"]
    (escalation,) = [e for e in events if e["type"] == "escalation.raised"]
    assert escalation["data"]["escalated_to"] == "production_director"
    assert escalation["occurred_at"] == item["due_at"]
    assert escalation["source"] == "ledger"


def test_several_watchers_at_once_raise_one_escalation(
    client: TestClient, clock: FrozenClock
) -> None:
    """Several server processes each run the watcher: the escalation's id and content depend
    on the missed item alone, so the ledger stores it once."""
    from concurrent.futures import ThreadPoolExecutor

    from ledger.readmodels.projections import Projections
    from ledger.watcher import tick

    complaint(client, clock, 100)
    post(client, notify("investigate", "production", at(clock, 90)))
    ledger = client.app.state.ledger  # type: ignore[attr-defined]
    watchers = [Projections(ledger) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        raised = list(pool.map(lambda p: tick(p, clock.now), watchers))
    assert sum(raised) == 1
    feed = client.get("/v1/events").json()["events"]
    assert [e["type"] for e in feed].count("escalation.raised") == 1
