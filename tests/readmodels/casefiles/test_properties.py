"""Properties of the case files' read model (issue 11, item 3), on SQLite and PostgreSQL.

For random histories of material lots, production batches made from them, tests, inspections,
process records, attributions, notifications, complaints naming batches and corrections of any of
them: the timelines (walked page by page with their cursors) and responsibility chains read from
the stored read model equal, byte for byte, those computed from every counted event by the pure
functions; live, as of earlier recorded times, after catching up in pages of any size, and after
a rebuild.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import bootstrap
from ledger.application import Ledger
from ledger.domain.errors import LedgerError, StreamNotFoundError
from ledger.domain.events import ENVELOPE_MODELS
from ledger.readmodels.casefiles import evolve
from ledger.readmodels.casefiles.query import ResponsibilityChains, TimelinePages
from ledger.readmodels.responsibility.query import Responsibilities
from ledger.readmodels.runner import ProjectionRunner
from ledger.readmodels.timeline.query import Timelines
from tests.conftest import FrozenClock

LOTS, BATCHES, COMPLAINTS = 3, 3, 2
STAGES = ["incoming", "in_process", "final", "outgoing"]
CATEGORIES = ["material", "process", "operator", "inspection"]

# (what, which stream, a few choices that shape its data, how many hours before the last)
step = st.tuples(
    st.sampled_from(["test", "inspect", "process", "attribute", "notify", "answer", "correct",
                     "correct", "file", "register"]),
    st.integers(0, 5), st.integers(0, 7), st.integers(0, 700),
)  # fmt: skip


class Story:
    """Appends a random history of case files; remembers what it sent, tolerates refusals."""

    def __init__(self, ledger: Ledger, clock: FrozenClock) -> None:
        self.ledger = ledger
        self.tag = uuid.uuid4().hex[:8]
        self.start = clock.now - timedelta(days=40)
        self.sent: list[tuple[str, dict[str, str], str, dict[str, Any]]] = []
        self.notified: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.unknown = f"B-{self.tag}-late"

    def lot(self, n: int) -> str:
        return f"M-{self.tag}-{n % LOTS}"

    def batch(self, n: int) -> str:
        return f"B-{self.tag}-{n % BATCHES}"

    def complaint(self, n: int) -> dict[str, str]:
        return {"type": "complaint", "id": f"C-{self.tag}-{n}"}

    def case_stream(self, n: int) -> dict[str, str]:
        """A lot, a batch or a complaint."""
        if n % 3 == 0:
            return {"type": "batch", "id": self.lot(n // 3)}
        if n % 3 == 1:
            return {"type": "batch", "id": self.batch(n // 3)}
        return self.complaint(n // 3 % COMPLAINTS)

    def send(
        self, event_type: str, stream: dict[str, str], data: dict[str, Any], hours: int
    ) -> str | None:
        body = {
            "event_id": str(uuid.uuid4()),
            "type": event_type,
            "stream": stream,
            "occurred_at": (self.start + timedelta(hours=hours)).isoformat(),
            "actor": {"id": "E1", "name": "n", "department": "quality"},
            "data": data,
        }
        try:
            envelope = ENVELOPE_MODELS[event_type].model_validate(body)
            self.ledger.append([envelope], source="mes")
        except LedgerError:
            return None
        if event_type != "event.corrected":
            self.sent.append((str(body["event_id"]), stream, event_type, data))
        return str(body["event_id"])

    def lots_of(self, n: int) -> list[str]:
        """Some lots, a batch now and then (a batch may be made of another, or of itself)."""
        lots = [self.lot(n + k) for k in range(n % 3)]
        return [*lots, self.batch(n)] if n % 4 == 3 else lots

    def open(self) -> None:
        for n in range(LOTS):
            lot = {"kind": "material", "product": "steel", "quantity": 1, "supplier": "S"}
            self.send("batch.registered", {"type": "batch", "id": self.lot(n)}, lot, n)
        for n in range(BATCHES):
            made = {"kind": "production", "product": "frame", "quantity": 1,
                    "material_lots": self.lots_of(n + 1)}  # fmt: skip
            self.send("batch.registered", {"type": "batch", "id": self.batch(n)}, made, 10 + n)
        for n in range(COMPLAINTS):
            self.file(n, n, 20 + n)

    def file(self, n: int, choice: int, hours: int) -> None:
        names = [self.batch(choice + k) for k in range(1 + choice % 2)]
        if choice % 3 == 2:
            names.append(self.lot(choice))  # a complaint may name a lot, or a batch never made
        if choice % 5 == 4:
            names.append(self.unknown)
        filed = {"customer": "c", "batch_ids": names, "description": "d", "severity": "minor"}
        self.send("complaint.filed", self.complaint(n), filed, hours)

    def play(self, op: tuple[str, int, int, int]) -> None:
        kind, n, choice, hours = op
        data = self.data(kind, n, choice)
        if kind == "correct":
            self.correct(n * 8 + choice, hours)
        elif kind == "file":
            self.file(COMPLAINTS + n, choice, hours)  # a new complaint
        elif kind == "register":  # a batch some complaints named before it was made
            made = {"kind": "production", "product": "frame", "quantity": 1,
                    "material_lots": self.lots_of(choice)}  # fmt: skip
            self.send("batch.registered", {"type": "batch", "id": self.unknown}, made, hours)
        elif kind == "answer" and self.notified:
            stream, _ = self.notified[(n + choice) % len(self.notified)]
            self.send("investigation.reported", stream, {"findings": "f"}, hours)
        elif data is not None:
            stream, event_type, body = data
            event_id = self.send(event_type, stream, body, hours)
            if event_id and event_type == "notification.sent":
                self.notified.append((stream, body))

    def data(
        self, kind: str, n: int, choice: int
    ) -> tuple[dict[str, str], str, dict[str, Any]] | None:
        if kind == "test":
            result = "fail" if choice % 2 else "pass"
            data = {"result": result, "report_id": "R"}
            return {"type": "batch", "id": self.lot(n)}, "material.tested", data
        if kind == "inspect":
            stream = {"type": "batch", "id": self.lot(n) if n % 2 else self.batch(n)}
            return stream, "inspection.recorded", inspection(choice)
        if kind == "process":
            return {"type": "batch", "id": self.batch(n)}, "process.recorded", process(choice)
        if kind == "attribute":
            evidence = [e for e, *_ in self.sent[-choice:]] if choice else []
            return self.case_stream(n), "cause.attributed", attribution(choice, evidence)
        if kind == "notify":
            data = {"to_department": "production", "action": "investigate"}
            if choice % 2:
                data["due_at"] = (self.start + timedelta(hours=choice * 20)).isoformat()
            return self.case_stream(n), "notification.sent", data
        return None

    def correct(self, n: int, hours: int) -> None:
        if not self.sent:
            return
        event_id, stream, event_type, data = self.sent[n % len(self.sent)]
        fixed = corrected(self, event_type, data, n)
        if fixed is not None:
            body = {"corrects_event_id": event_id, "reason": "r", "data": fixed}
            self.send("event.corrected", stream, body, hours)


def inspection(choice: int) -> dict[str, Any]:
    result = "fail" if choice % 2 else "pass"
    return {"stage": STAGES[choice // 2 % 4], "sample_size": 5,
            "defects": 1 if result == "fail" else 0, "result": result}  # fmt: skip


def process(choice: int) -> dict[str, Any]:
    return {"step": "s", "within_spec": choice % 2 == 0, "operator_id": "O",
            "operator_qualified": choice % 4 < 2, "equipment_id": "E",
            "equipment_ok": choice % 8 < 4}  # fmt: skip


def attribution(choice: int, evidence: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "category": CATEGORIES[choice % 4],
        "responsible_department": "production",
        "controllable": choice > 3,
    }
    if evidence:
        data["evidence_event_ids"] = evidence
    return data  # fmt: skip


def corrected(story: Story, event_type: str, data: dict[str, Any], n: int) -> Any:
    """Other data for an event of `event_type`: what a correction says it was."""
    fixes: dict[str, Callable[[], Any]] = {
        "material.tested": lambda: {**data, "result": {"fail": "pass"}.get(data["result"], "fail")},
        "inspection.recorded": lambda: inspection(n + 1),
        "process.recorded": lambda: process(n + 1),
        "cause.attributed": lambda: attribution(n + 1, data.get("evidence_event_ids", [])),
        "notification.sent": lambda: {**data, "to_department": "quality"},
        "complaint.filed": lambda: {**data, "batch_ids": [story.batch(n), story.lot(n)]},
        "batch.registered": lambda: (
            {**data, "material_lots": story.lots_of(n)} if data["kind"] == "production"
            else {**data, "product": "aluminium"}
        ),
    }  # fmt: skip
    fix = fixes.get(event_type)
    return fix() if fix is not None else None


def outcome(read: Callable[[], dict[str, Any]]) -> bytes:
    """A read's JSON, or its error."""
    try:
        return orjson.dumps(read())
    except StreamNotFoundError as e:
        return f"not found: {e}".encode()


def walk(read: Callable[[str | None], dict[str, Any]]) -> list[bytes]:
    """Every page of a walk, as JSON (or its error)."""
    pages: list[bytes] = []
    cursor: str | None = None
    while True:
        try:
            body = read(cursor)
        except StreamNotFoundError as e:
            return [*pages, f"not found: {e}".encode()]
        pages.append(orjson.dumps(body))
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def check_reads(
    story: Story, runner: ProjectionRunner, now: datetime, as_of: datetime | None, limit: int
) -> None:
    """Stored reads equal the pure functions' for every complaint and batch of the story."""
    ledger = story.ledger
    pure, stored = Timelines(ledger), TimelinePages(runner)
    chains, stored_chains = Responsibilities(ledger, now), ResponsibilityChains(runner, now)
    for n in range(COMPLAINTS + 6):
        c = story.complaint(n)["id"]
        assert walk(
            lambda cursor, c=c: stored.complaint_timeline(c, as_of, limit=limit, cursor=cursor)
        ) == walk(lambda cursor, c=c: pure.complaint_timeline(c, as_of, limit=limit, cursor=cursor))
        assert outcome(lambda c=c: stored_chains.complaint_responsibility(c, as_of)) == outcome(
            lambda c=c: chains.complaint_responsibility(c, as_of)
        )
    for b in [*(story.lot(n) for n in range(LOTS)), *(story.batch(n) for n in range(BATCHES)),
              story.unknown]:  # fmt: skip
        assert walk(
            lambda cursor, b=b: stored.batch_timeline(b, as_of, limit=limit, cursor=cursor)
        ) == walk(lambda cursor, b=b: pure.batch_timeline(b, as_of, limit=limit, cursor=cursor))


SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    history=st.lists(step, min_size=1, max_size=40),
    chunk=st.integers(1, 12),
    limit=st.integers(1, 7),
    earlier=st.lists(st.integers(0, 10_000), min_size=1, max_size=3),
    every=st.integers(1, 5),
)
def test_stored_timelines_and_chains_equal_the_pure_functions_live_as_of_and_rebuilt(
    parts: bootstrap.Parts,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    history: list[Any],
    chunk: int,
    limit: int,
    earlier: list[int],
    every: int,
) -> None:
    monkeypatch.setattr(evolve, "CHECKPOINT", every)  # summaries stored every few events
    ledger = parts.ledger
    runner = parts.projections.casefiles
    story = Story(ledger, clock)
    first = ledger.last_position()
    story.open()
    for i, op in enumerate(history):
        story.play(op)
        if i % chunk == 0:
            runner.catch_up()  # incremental, page by page as events arrive
    runner.catch_up()
    now = clock.now
    check_reads(story, runner, now, None, limit)

    # as of the recorded time of earlier events of this story
    rows = ledger.feed(first, 10_000)
    times = [rows[k % len(rows)].recorded_at for k in earlier]
    for as_of in times:
        check_reads(story, runner, now, as_of, limit)

    runner.rebuild()
    check_reads(story, runner, now, None, limit)
    check_reads(story, runner, now, times[0], limit)


@pytest.mark.parametrize("limit", [40, 1000])
def test_a_long_batch_reads_its_pages_and_chain_from_checkpoints_live_and_as_of(
    parts: bootstrap.Parts, clock: FrozenClock, limit: int
) -> None:
    """A batch of a few hundred events over several checkpoints of its summary, its
    registration corrected half-way, read as of the end of each append."""
    ledger = parts.ledger
    runner = parts.projections.casefiles
    story = Story(ledger, clock)
    story.open()
    batch = {"type": "batch", "id": story.batch(0)}
    times = []
    for n in range(6):
        records = [
            ({"event_id": str(uuid.uuid4()), "type": "inspection.recorded", "stream": batch,
              "occurred_at": (story.start + timedelta(hours=30 + (k * 37) % 300)).isoformat(),
              "actor": {"id": "E1", "name": "n", "department": "quality"},
              "source": "mes", "data": inspection(k % 8), "attributes": {}}, None)
            for k in range(n * 50, n * 50 + 50)
        ]  # fmt: skip
        ledger.append_records(records)
        if n == 2:
            registered, _, _, data = story.sent[LOTS]  # the batch's: made of other lots
            fixed = {**data, "material_lots": [story.lot(1), story.lot(2)]}
            body = {"corrects_event_id": registered, "reason": "r", "data": fixed}
            assert story.send("event.corrected", batch, body, 40)
            story.play(("notify", 1, 0, 50))
            story.play(("answer", 0, 0, 60))
        if n % 2:
            runner.catch_up()
        times.append(ledger.feed(ledger.last_position() - 1, 1)[0].recorded_at)
    runner.catch_up()
    check_reads(story, runner, clock.now, None, limit)
    for as_of in times[1::2]:
        check_reads(story, runner, clock.now, as_of, limit)
