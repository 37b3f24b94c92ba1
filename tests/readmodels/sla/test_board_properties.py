"""Properties of the SLA board read model (issue 4, item 6), on SQLite and PostgreSQL.

For random histories over several batches and complaints: the incrementally maintained board, a
rebuild from zero and the pure function of the events agree byte for byte; an as-of read equals
the pure function on the history cut at that time; appending more never changes an earlier
as-of read; fingerprints are equal exactly when results are equal; a walk of the board in pages
gives its items once each, every page at the walk's first position, while appends go on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.domain.errors import ConflictError
from ledger.domain.events import ENVELOPE_MODELS
from ledger.readmodels.facts import Fact, sealed
from ledger.readmodels.projections import Projections
from ledger.readmodels.sla.evolve import PolicyHistory, settle, sla_items
from ledger.readmodels.sla.query import SlaReads
from ledger.readmodels.trusted import trusted_sources
from ledger.watcher import tick

# Far enough before the ledger clock (the real time) that the longest history drawn
# (26 steps of up to 9 × 72 hours) never lies in its future.
START = datetime(2024, 8, 1, tzinfo=UTC)
ACTIONS = ["investigate", "rectification_plan", "rectify", "verify", "confirm_customer"]
ANSWERS = {
    "investigate": ("investigation.reported", {"findings": "f"}),
    "rectification_plan": (
        "rectification.planned",
        {"plan": "p", "owner_id": "E3", "due_at": "2026-12-01T00:00:00Z"},
    ),
    "rectify": ("rectification.completed", {"summary": "s"}),
    "verify": ("verification.recorded", {"result": "pass"}),
    "confirm_customer": ("complaint.closed", {"customer_satisfied": True}),
}
DEPARTMENTS = ["production", "quality", "sales"]

step = st.one_of(
    st.tuples(st.just("notify"), st.integers(0, 3), st.sampled_from(ACTIONS),
              st.sampled_from(DEPARTMENTS), st.booleans()),
    st.tuples(st.just("answer"), st.integers(0, 3), st.sampled_from(ACTIONS),
              st.sampled_from(DEPARTMENTS), st.booleans()),
    st.tuples(st.just("correct"), st.integers(0, 3), st.sampled_from(ACTIONS),
              st.sampled_from(DEPARTMENTS), st.booleans()),
    st.tuples(st.just("policy"), st.integers(1, 72), st.sampled_from(ACTIONS),
              st.sampled_from(DEPARTMENTS), st.booleans()),
    st.tuples(st.just("reopen"), st.integers(0, 3), st.sampled_from(ACTIONS),
              st.sampled_from(DEPARTMENTS), st.booleans()),
    st.tuples(st.just("tick"), st.integers(0, 3), st.sampled_from(ACTIONS),
              st.sampled_from(DEPARTMENTS), st.booleans()),
    st.tuples(st.just("policy_fix"), st.integers(1, 72), st.sampled_from(ACTIONS),
              st.sampled_from(DEPARTMENTS), st.booleans()),
)  # fmt: skip


class Story:
    """Appends a random history; remembers what it sent, tolerates refused events."""

    def __init__(self, ledger: Ledger, projections: Projections) -> None:
        self.ledger = ledger
        self.projections = projections
        self.tag = uuid.uuid4().hex[:8]
        self.hours = 0
        self.notifications: list[tuple[str, str, dict[str, Any]]] = []
        self.policies: list[str] = []

    def stream(self, i: int) -> dict[str, str]:
        kind = "complaint" if i % 2 == 0 else "batch"
        return {"type": kind, "id": f"{kind[0].upper()}-{self.tag}-{i}"}

    def send(
        self, event_type: str, stream: dict[str, str], data: Any, who: str, trusted: bool
    ) -> str | None:
        self.hours += 1
        body = {
            "event_id": str(uuid.uuid4()),
            "type": event_type,
            "stream": stream,
            "occurred_at": (START + timedelta(hours=self.hours)).isoformat(),
            "actor": {"id": "E1", "name": "n", "department": who},
            "data": data,
        }
        envelope = ENVELOPE_MODELS[event_type].model_validate(body)
        try:
            self.ledger.append([envelope], source="demo" if trusted else "mes")
        except ConflictError:
            return None
        return str(body["event_id"])

    def open(self) -> None:
        for i in range(4):
            s = self.stream(i)
            if s["type"] == "batch":
                self.send("batch.registered", s, {"kind": "production", "product": "p",
                                                   "quantity": 1}, "production", True)  # fmt: skip
            else:
                self.send("complaint.filed", s, {"customer": "c", "description": "d",
                                                  "severity": "minor"}, "sales", True)  # fmt: skip

    def play(self, op: tuple[str, int, str, str, bool]) -> None:
        kind, n, action, department, trusted = op
        self.hours += 9 * n  # gaps of up to a day and more: answers in time, late, or never
        if kind == "notify":
            stream = self.stream(n)
            if action in ("confirm_customer",) and stream["type"] == "batch":
                action = "verify"
            data = {"to_department": department, "action": action}
            event_id = self.send("notification.sent", stream, data, "quality", trusted)
            if event_id:
                self.notifications.append((event_id, stream["id"], data))
        elif kind == "answer" and self.notifications:
            # mostly the awaited answer; sometimes from another department (no fulfilment)
            _, stream_id, asked = self.notifications[n % len(self.notifications)]
            stream = {"type": "complaint" if stream_id.startswith("C") else "batch",
                      "id": stream_id}  # fmt: skip
            event_type, data = ANSWERS[asked["action"]]
            who = asked["to_department"] if action != "verify" else department
            self.send(event_type, stream, data, who, trusted)
        elif kind == "correct" and self.notifications:
            event_id, stream_id, data = self.notifications[n % len(self.notifications)]
            stream = {"type": "complaint" if stream_id.startswith("C") else "batch",
                      "id": stream_id}  # fmt: skip
            fixed = {**data, "to_department": department}
            self.send("event.corrected", stream, {"corrects_event_id": event_id,
                                                  "reason": "r", "data": fixed},
                      "quality", trusted)  # fmt: skip
        elif kind in ("policy", "policy_fix"):
            self.policy(kind, n, action, trusted)
        elif kind == "tick":
            tick(self.projections, START + timedelta(hours=self.hours))
        elif kind == "reopen":
            self.send("complaint.reopened", self.stream(0), {"reason": "again"}, "sales", trusted)

    def policy(self, kind: str, n: int, action: str, trusted: bool) -> None:
        """A policy set, or the last one corrected after items opened under it."""
        plan = {"type": "plan", "id": f"P-{self.tag}"}
        if kind == "policy":
            sla = {"windows_hours": {action: n}, "breach_penalty_points": n % 5}
            event_id = self.send("policy.set", plan, {"sla": sla}, "management", trusted)
            if event_id:
                self.policies.append(event_id)
        elif self.policies:
            sla = {"windows_hours": {action: n + 24}, "breach_penalty_points": (n + 1) % 5}
            self.send("event.corrected", plan, {"corrects_event_id": self.policies[-1],
                      "reason": "r", "data": {"sla": sla}}, "management", trusted)  # fmt: skip


def all_facts(ledger: Ledger) -> list[Fact]:
    facts: list[Fact] = []
    while rows := ledger.feed(facts[-1].position if facts else 0, 1000):
        facts += [Fact.from_row(r) for r in rows]
    return facts


def pure_board(ledger: Ledger, cut: int, now: datetime) -> dict[str, Any]:
    """The board computed straight from the events, with no read model."""
    facts = [f for f in all_facts(ledger) if f.position <= cut]
    policies = PolicyHistory([f for f in facts if f.stream[0] == "plan"])
    by_stream: dict[tuple[str, str], list[Fact]] = {}
    for f in facts:
        by_stream.setdefault(f.stream, []).append(f)
    trusted = trusted_sources(ledger)
    items = [settle(i, now) for fs in by_stream.values() for i in sla_items(fs, policies, trusted)]
    items.sort(key=lambda i: (i["due_at"], i["notification_event_id"]))
    return sealed({"items": items, "position": cut, "next_cursor": None})


SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(history=st.lists(step, min_size=1, max_size=24), chunk=st.integers(1, 8))
def test_incremental_equals_rebuild_equals_the_pure_function(
    ledger: Ledger, history: list[Any], chunk: int
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    story.open()
    for i, op in enumerate(history):
        story.play(op)
        if i % chunk == 0:
            projections.board.catch_up()  # incremental, page by page as events arrive
    now = START + timedelta(days=100)
    disputes = SlaReads(projections.board, now)
    live = disputes.sla_board(None, None, as_of=None)
    cut = ledger.last_position()
    assert live == pure_board(ledger, cut, now)

    projections.board.rebuild()
    assert disputes.sla_board(None, None, as_of=None, limit=1000) == live

    pages = [disputes.sla_board(None, None, as_of=None, limit=chunk)]
    while pages[-1]["next_cursor"] is not None:
        story.play(("notify", 0, "investigate", "quality", False))  # pages read at their cut
        pages.append(
            disputes.sla_board(None, None, None, limit=chunk, cursor=pages[-1]["next_cursor"])
        )
        projections.board.catch_up()
    assert [i for p in pages for i in p["items"]] == live["items"]
    assert {p["position"] for p in pages} == {cut}
    assert all(p == sealed({k: v for k, v in p.items() if k != "fingerprint"}) for p in pages)


@SETTINGS
@given(first=st.lists(step, min_size=1, max_size=16), more=st.lists(step, max_size=10))
def test_as_of_equals_the_history_cut_and_never_changes_later(
    ledger: Ledger, first: list[Any], more: list[Any]
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    story.open()
    for op in first:
        story.play(op)
    disputes = SlaReads(projections.board, START)
    rows = ledger.feed(max(0, ledger.last_position() - 12), 1000)
    seen: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for row in rows:
        as_of = row.recorded_at
        board = disputes.sla_board(None, None, as_of=as_of)
        assert board == pure_board(ledger, board["position"], as_of)
        assert board["position"] >= row.position
        seen[row.recorded_at.isoformat()] = board
        results.append(board)

    for op in more:
        story.play(op)
    for when, board in seen.items():
        assert disputes.sla_board(None, None, as_of=datetime.fromisoformat(when)) == board

    for a in results:
        for b in results:
            same_body = orjson.dumps({**a, "fingerprint": ""}) == orjson.dumps(
                {**b, "fingerprint": ""}
            )
            assert (a["fingerprint"] == b["fingerprint"]) == same_body
