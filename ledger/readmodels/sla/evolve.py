"""SLA items of SPEC §7.3 and the policy in force: pure functions of the events they count."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ledger.domain.time import format_time, parse_time
from ledger.readmodels.facts import Fact, effective_data

FULFILLED_BY = {
    "investigate": "investigation.reported",
    "rectification_plan": "rectification.planned",
    "rectify": "rectification.completed",
    "verify": "verification.recorded",
    "confirm_customer": "complaint.closed",
}
ANSWER_TYPES = frozenset(FULFILLED_BY.values())


@dataclass(frozen=True)
class Policy:
    """SPEC §8's defaults, replaced field by field by `policy.set` events."""

    windows_hours: dict[str, float] = field(
        default_factory=lambda: {
            "investigate": 24,
            "rectification_plan": 24,
            "rectify": 168,
            "verify": 72,
            "confirm_customer": 48,
        }
    )
    backdating_tolerance_hours: float = 1
    breach_penalty_points: float = 2
    escalate_to: str = "{department}_director"
    incentives: tuple[dict[str, Any], ...] = (
        {"department": "production", "kpi": "defect_rate_adjusted", "outcome": "bonus_pct",
         "met": 10, "missed": -5},
        {"department": "sales", "kpi": "complaint_handling_timeliness",
         "outcome": "commission_coefficient_delta", "met": 0.1, "missed": -0.05},
        {"department": "quality", "kpi": "rectification_completion_rate",
         "outcome": "promotion_score_delta", "met": 5, "missed": -3},
    )  # fmt: skip

    def updated(self, data: dict[str, Any]) -> Policy:
        sla = data.get("sla") or {}
        return Policy(
            windows_hours={**self.windows_hours, **sla.get("windows_hours", {})},
            backdating_tolerance_hours=_or(
                sla.get("backdating_tolerance_hours"), self.backdating_tolerance_hours
            ),
            breach_penalty_points=_or(sla.get("breach_penalty_points"), self.breach_penalty_points),
            escalate_to=sla.get("escalate_to") or self.escalate_to,
            incentives=tuple(data["incentives"])
            if data.get("incentives") is not None
            else self.incentives,
        )

    @property
    def tolerance(self) -> timedelta:
        return timedelta(hours=self.backdating_tolerance_hours)


def _or(value: Any, default: float) -> float:
    return float(value) if value is not None else default


class PolicyHistory:
    """The policy in force at each position, from the counted `policy.set` events."""

    def __init__(self, policy_facts: list[Fact]) -> None:
        data = effective_data(policy_facts)
        self._steps: list[tuple[int, Policy]] = [(0, Policy())]
        for f in sorted(policy_facts, key=lambda f: f.position):
            if f.type == "policy.set":
                self._steps.append((f.position, self._steps[-1][1].updated(data[f.event_id])))

    def at(self, position: int) -> Policy:
        """The policy recorded last at or before `position`."""
        current = self._steps[0][1]
        for at, policy in self._steps:
            if at > position:
                break
            current = policy
        return current

    @property
    def latest(self) -> Policy:
        return self._steps[-1][1]


def effective_time(fact: Fact, policy: Policy, trusted: frozenset[str]) -> datetime:
    """When an event counts for SLAs: backdating beyond the tolerance does not help."""
    if fact.record["source"] in trusted:
        return fact.occurred_at
    return max(fact.occurred_at, fact.recorded_at - policy.tolerance)


def sla_items(
    facts: list[Fact], policies: PolicyHistory, trusted: frozenset[str]
) -> list[dict[str, Any]]:
    """One item per `notification.sent` among one stream's counted `facts`, in position order.

    `trusted` names the sources whose events count at their occurred_at (admin keys). The items
    do not depend on the time they are read at: `settle` adds the state at a given time.
    """
    ordered = sorted(facts, key=lambda f: f.position)
    data = effective_data(ordered)
    escalated = {  # the last escalation of each notification: it counts if after it
        data[f.event_id]["notification_event_id"]: f.position
        for f in ordered
        if f.type == "escalation.raised"
    }
    # each kind of answer by its department, in position order: an item's answer is the first
    # after its notification (one bisection, not a scan of the stream per item)
    answers: dict[tuple[str, str], list[Fact]] = {}
    for f in ordered:
        if f.type in ANSWER_TYPES:
            answers.setdefault((f.type, f.record["actor"]["department"]), []).append(f)
    items = []
    for n in ordered:
        if n.type != "notification.sent":
            continue
        d = data[n.event_id]
        policy = policies.at(n.position)
        opened = effective_time(n, policy, trusted)
        due = (
            parse_time(d["due_at"])
            if d.get("due_at")
            else opened + timedelta(hours=policy.windows_hours[d["action"]])
        )
        wanted = FULFILLED_BY[d["action"]]
        candidates = answers.get((wanted, d["to_department"]), [])
        first = bisect_right(candidates, n.position, key=lambda f: f.position)
        answer = candidates[first] if first < len(candidates) else None
        fulfilled = effective_time(answer, policy, trusted) if answer else None
        items.append(
            {
                "stream": n.record["stream"],
                "notification_event_id": n.event_id,
                "department": d["to_department"],
                "action": d["action"],
                "opened_at": format_time(opened),
                "due_at": format_time(due),
                "fulfilled_at": format_time(fulfilled) if fulfilled else None,
                "fulfilled_by": answer.event_id if answer else None,
                "escalated": escalated.get(n.event_id, 0) > n.position,
                "backdated": bool(
                    answer and answer.recorded_at - answer.occurred_at > policy.tolerance
                ),
                "escalate_to": policy.escalate_to.format(department=d["to_department"]),
                "breach_penalty_points": policy.breach_penalty_points,
            }
        )
    return items


def settle(item: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The item as SPEC §7.3 shows it at `now`: open, breached, met or met_late."""
    due = item["due_at"]
    if item["fulfilled_at"] is not None:
        state = "met" if item["fulfilled_at"] <= due else "met_late"
    else:
        state = "open" if format_time(now) < due else "breached"
    shown = {k: v for k, v in item.items() if k != "breach_penalty_points"}
    shown["state"] = state
    shown["penalty_points"] = (
        item["breach_penalty_points"] if state in ("breached", "met_late") else 0
    )
    return shown
