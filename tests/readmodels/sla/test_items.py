"""SLA items (SPEC §7.3) as a pure function: given events, when read at a time, then states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.domain.time import parse_time
from ledger.readmodels.facts import Fact
from ledger.readmodels.sla.evolve import PolicyHistory, settle, sla_items

T0 = datetime(2026, 11, 6, 2, 0, tzinfo=UTC)
TRUSTED = frozenset({"demo"})


class History:
    """Builds a stream's facts: each event is recorded when it occurs unless told otherwise."""

    def __init__(self) -> None:
        self.facts: list[Fact] = []

    def add(
        self,
        event_type: str,
        data: dict[str, Any],
        *,
        at: timedelta = timedelta(0),
        department: str = "quality",
        recorded_after: timedelta = timedelta(0),
        source: str = "mes",
        stream: tuple[str, str] = ("complaint", "C-1"),
    ) -> str:
        occurred = T0 + at
        event_id = f"00000000-0000-4000-8000-{len(self.facts) + 1:012d}"
        record = {
            "event_id": event_id,
            "type": event_type,
            "stream": {"type": stream[0], "id": stream[1]},
            "occurred_at": occurred.isoformat(),
            "actor": {"id": "E1", "name": "n", "department": department},
            "source": source,
            "data": data,
            "attributes": {},
        }
        self.facts.append(Fact(record, len(self.facts) + 1, occurred + recorded_after))
        return event_id

    def notify(self, action: str, to: str = "production", **kw: Any) -> str:
        return self.add("notification.sent", {"to_department": to, "action": action}, **kw)

    def items(self, now: timedelta, policies: list[Fact] | None = None) -> list[dict[str, Any]]:
        items = sla_items(self.facts, PolicyHistory(policies or []), TRUSTED)
        return [settle(i, T0 + now) for i in items]


H = timedelta(hours=1)


def test_an_unanswered_notification_is_open_until_due_then_breached() -> None:
    h = History()
    h.notify("investigate")
    (item,) = h.items(now=23 * H)
    assert item["state"] == "open"
    assert parse_time(item["due_at"]) == T0 + 24 * H
    (item,) = h.items(now=24 * H)
    assert item["state"] == "breached"
    assert item["penalty_points"] == 2
    assert item["escalate_to"] == "production_director"


def test_an_answer_by_the_addressed_department_in_time_is_met_and_late_is_met_late() -> None:
    h = History()
    h.notify("rectification_plan")
    h.add("rectification.planned", {"plan": "p", "owner_id": "E3", "due_at": "x"},
          at=20 * H, department="production")  # fmt: skip
    h.notify("investigate", at=21 * H)
    h.add("investigation.reported", {"findings": "f"}, at=50 * H, department="production")
    planned, investigated = h.items(now=100 * H)
    assert planned["state"] == "met" and planned["fulfilled_by"] is not None
    assert investigated["state"] == "met_late"
    assert investigated["penalty_points"] == 2


def test_an_answer_from_another_department_or_of_another_type_does_not_fulfil() -> None:
    h = History()
    h.notify("investigate")
    h.add("investigation.reported", {"findings": "f"}, at=1 * H, department="sales")
    h.add("rectification.completed", {"summary": "s"}, at=2 * H, department="production")
    (item,) = h.items(now=30 * H)
    assert item["state"] == "breached"
    assert item["fulfilled_by"] is None


def test_backdating_an_answer_does_not_make_it_on_time() -> None:
    h = History()
    h.notify("investigate")
    # occurred at 20 h (in time) but recorded at 40 h: counts at 40 h − 1 h tolerance = 39 h
    h.add("investigation.reported", {"findings": "f"}, at=20 * H, department="production",
          recorded_after=20 * H)  # fmt: skip
    (item,) = h.items(now=50 * H)
    assert item["state"] == "met_late"
    assert item["backdated"] is True
    assert parse_time(item["fulfilled_at"]) == T0 + 39 * H


def test_admin_events_count_at_their_occurred_at_but_are_still_marked_backdated() -> None:
    h = History()
    h.notify("investigate", source="demo")
    h.add("investigation.reported", {"findings": "f"}, at=20 * H, department="production",
          recorded_after=20 * H, source="demo")  # fmt: skip
    (item,) = h.items(now=50 * H)
    assert item["state"] == "met"
    assert item["backdated"] is True


def test_an_explicit_due_at_and_an_escalation_are_reported() -> None:
    h = History()
    due = (T0 + 2 * H).isoformat()
    n = h.add("notification.sent", {"to_department": "production", "action": "rectify",
                                     "due_at": due}, at=timedelta(0))  # fmt: skip
    h.add("escalation.raised", {"notification_event_id": n, "department": "production",
                                "escalated_to": "production_director", "due_at": due},
          at=2 * H, source="ledger")  # fmt: skip
    (item,) = h.items(now=3 * H)
    assert item["state"] == "breached"
    assert item["escalated"] is True


def test_the_policy_in_force_when_the_notification_was_recorded_sets_its_window() -> None:
    plan = History()
    plan.add("policy.set", {"sla": {"windows_hours": {"investigate": 4},
                                    "breach_penalty_points": 5}},
             at=-10 * H, stream=("plan", "P-1"))  # fmt: skip
    h = History()
    h.notify("investigate")
    h.facts = [Fact(f.record, f.position + 10, f.recorded_at) for f in h.facts]
    (item,) = h.items(now=5 * H, policies=plan.facts)
    assert parse_time(item["due_at"]) == T0 + 4 * H
    assert item["state"] == "breached" and item["penalty_points"] == 5
    # a notification recorded before the policy keeps the default window
    early = History()
    early.notify("investigate")
    late_policy = [Fact(f.record, 99, f.recorded_at) for f in plan.facts]
    (item,) = early.items(now=5 * H, policies=late_policy)
    assert item["state"] == "open"


def test_a_corrected_notification_counts_with_its_corrected_data() -> None:
    h = History()
    n = h.notify("investigate", to="sales")
    h.add("event.corrected", {"corrects_event_id": n, "reason": "wrong department",
                              "data": {"to_department": "production", "action": "investigate"}},
          at=1 * H)  # fmt: skip
    h.add("investigation.reported", {"findings": "f"}, at=2 * H, department="production")
    (item,) = h.items(now=30 * H)
    assert item["department"] == "production"
    assert item["state"] == "met"
