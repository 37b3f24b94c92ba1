"""The KPI read model agrees with the straightforward recomputation (issue 6, item 5).

For random histories of batches, lots, complaints, SLA items, attributions, corrections, targets
and costs, appended on SQLite and PostgreSQL and projected page by page as they arrive: the read
model's figures for several periods, departments and people are byte for byte those of
`kpis()`/`person_kpis()` computed from the raw events, live, as of earlier positions, and after a
rebuild. The histories accumulate in one ledger per test, so later examples also check that a
new history leaves the earlier figures as the raw events say.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.domain.errors import LedgerError
from ledger.domain.events import ENVELOPE_MODELS
from ledger.readmodels.facts import Fact
from ledger.readmodels.kpis.evolve import ledger_rows
from ledger.readmodels.kpis.report import (
    Period,
    Report,
    department_body,
    kpis,
    person_body,
    person_kpis,
    plan_facts_of,
    seal,
)
from ledger.readmodels.kpis.sums import contribution
from ledger.readmodels.kpis.view import COLUMNS, OPEN, SUM_COLUMNS, stored_loader, to_row
from ledger.readmodels.projections import Projections
from ledger.readmodels.trusted import trusted_sources

START = datetime(2026, 9, 1, tzinfo=UTC)
# The time both sides of each comparison settle their SLA items at (the report's "now"), and the
# latest occurred_at the stories send. Fixed on purpose: the histories are of 2026 (their
# periods too), so every occurred_at lies before the ledger's real clock, which stamps
# recorded_at; the stored read and the recomputation both read those stamps and this NOW, so
# they agree on any date (the faketime runs at +400 and +3650 days check it).
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
# other tilings of the same sums; an offset of 5:07 has none (the read adds up every row)
OTHER_ZONES: tuple[Any, ...] = (
    ZoneInfo("UTC"), ZoneInfo("Asia/Kathmandu"), timezone(timedelta(hours=5, minutes=7)),
)  # fmt: skip
PERIODS = ("2026-09", "2026-10", "2026-11", "2026-Q4", "2026")
PEOPLE = ("E1", "E2", "E3")
DEPARTMENTS = ("production", "quality", "procurement", "sales")
ACTIONS = ("investigate", "rectification_plan", "rectify", "verify")
ANSWERS = {
    "investigate": ("investigation.reported", {"findings": "f"}),
    "rectification_plan": ("rectification.planned", None),
    "rectify": ("rectification.completed", {"summary": "s"}),
    "verify": ("verification.recorded", {"result": "pass"}),
}
KINDS = (
    "inspect", "process", "rework", "ship", "lot_test", "complaint", "attribute", "notify",
    "answer", "verify_fail", "cost", "target", "relative_target", "revenue", "policy",
    "correct", "catch_up",
)  # fmt: skip
BATCH_OPS = frozenset({"inspect", "process", "rework", "ship", "lot_test"})
CASE_OPS = frozenset({"complaint", "attribute", "notify", "answer", "verify_fail", "correct"})
PLAN_OPS = frozenset({"cost", "target", "relative_target", "revenue", "policy"})

step = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 2),  # which batch, lot or complaint
    st.integers(0, 40),  # a number: defects, hours, amounts
    st.sampled_from(DEPARTMENTS),
    st.sampled_from(PEOPLE),
    st.booleans(),  # trusted source / pass / controllable
    st.integers(0, 90),  # day of the event, from September 1st
)


class Story:
    """Appends a random but valid history under a fresh tag; refused events are skipped."""

    def __init__(self, ledger: Ledger, projections: Projections) -> None:
        self.ledger = ledger
        self.projections = projections
        self.tag = uuid.uuid4().hex[:6]
        self.opened: set[str] = set()
        self.sent: list[tuple[str, str, dict[str, Any]]] = []  # (event_id, stream id, data)
        self.notifications: list[tuple[str, dict[str, Any]]] = []

    def send(
        self, event_type: str, stream_id: str, data: dict[str, Any], when: datetime, **kw: Any
    ) -> str | None:
        kind = {"M": "batch", "B": "batch", "C": "complaint", "P": "plan"}[stream_id[0]]
        body = {
            "event_id": str(uuid.uuid4()),
            "type": event_type,
            "stream": {"type": kind, "id": stream_id},
            "occurred_at": min(when, NOW).isoformat(),
            "actor": {"id": kw.get("who", "E1"), "name": "n",
                      "department": kw.get("department", "quality")},
            "data": data,
        }  # fmt: skip
        envelope = ENVELOPE_MODELS[event_type].model_validate(body)
        try:
            self.ledger.append([envelope], source="demo" if kw.get("trusted", True) else "mes")
        except LedgerError:
            return None
        self.sent.append((body["event_id"], stream_id, data))
        return str(body["event_id"])

    def batch(self, n: int, when: datetime) -> str:
        batch_id = f"B-{self.tag}-{n}"
        if batch_id not in self.opened:
            self.opened.add(batch_id)
            self.send("batch.registered", batch_id,
                      {"kind": "production", "product": "p", "quantity": 100 + n},
                      when, department="production")  # fmt: skip
        return batch_id

    def lot(self, n: int, when: datetime, who: str) -> str:
        lot_id = f"M-{self.tag}-{n}"
        if lot_id not in self.opened:
            self.opened.add(lot_id)
            self.send("batch.registered", lot_id,
                      {"kind": "material", "product": "t", "quantity": 10, "supplier": "S"},
                      when, who=who, department="procurement")  # fmt: skip
        return lot_id

    def complaint(self, n: int, when: datetime) -> str:
        complaint_id = f"C-{self.tag}-{n}"
        if complaint_id not in self.opened:
            self.opened.add(complaint_id)
            batches = [f"B-{self.tag}-{i}" for i in range(n % 3 + 1)]
            self.send("complaint.filed", complaint_id,
                      {"customer": "c", "batch_ids": batches, "description": "d",
                       "severity": "minor"}, when, department="sales")  # fmt: skip
        return complaint_id

    def play(self, op: tuple[str, int, int, str, str, bool, int]) -> None:
        kind, n, x, dept, who, flag, day = op
        when = START + timedelta(days=day, hours=x % 24)
        if kind in BATCH_OPS:
            self._batch_op(kind, n, x, dept, who, flag, when)
        elif kind in CASE_OPS:
            self._case_op(kind, n, x, dept, who, flag, when)
        elif kind in PLAN_OPS:
            self._plan_op(kind, n, x, dept, who, flag, when)
        elif kind == "catch_up":
            self.projections.kpis.catch_up()

    def _batch_op(
        self, kind: str, n: int, x: int, dept: str, who: str, flag: bool, when: datetime
    ) -> None:
        """Events of batches and material lots."""
        if kind == "inspect":
            stage = ("in_process", "final", "outgoing")[x % 3]
            defects = x % 5 if not flag else 0
            self.send("inspection.recorded", self.batch(n, when),
                      {"stage": stage, "sample_size": 10, "defects": defects,
                       "result": "fail" if defects else "pass"}, when, who=who)  # fmt: skip
        elif kind == "process":
            self.send("process.recorded", self.batch(n, when),
                      {"step": "s", "within_spec": flag, "operator_id": who,
                       "operator_qualified": True, "equipment_id": "e", "equipment_ok": True},
                      when, department="production")  # fmt: skip
        elif kind == "rework":
            self.send("rework.recorded", self.batch(n, when),
                      {"units": x, "scrapped": 0}, when)  # fmt: skip
        elif kind == "ship":
            self.send("shipment.recorded", self.batch(n, when),
                      {"customer": f"K{x % 3}", "quantity": 5, "delivery_id": "d"},
                      when, department="sales")  # fmt: skip
        elif kind == "lot_test":
            lot = self.lot(n, when, who)
            if x % 2:
                result = "pass" if flag else "fail"
                self.send("material.tested", lot, {"result": result, "report_id": "r"}, when)
            else:
                self.send("inspection.recorded", lot,
                          {"stage": "incoming", "sample_size": 5, "defects": 0 if flag else 2,
                           "result": "pass" if flag else "fail"}, when)  # fmt: skip

    def _case_op(
        self, kind: str, n: int, x: int, dept: str, who: str, flag: bool, when: datetime
    ) -> None:
        """Complaints, attributions, notifications, their answers and corrections."""
        if kind == "complaint":
            self.complaint(n, when)
        elif kind == "attribute":
            stream = self.complaint(n, when) if x % 2 else self.batch(n, when)
            self.send("cause.attributed", stream,
                      {"category": "process", "responsible_department": dept,
                       "controllable": flag}, when)  # fmt: skip
        elif kind == "notify":
            stream = self.complaint(n, when) if x % 2 else self.batch(n, when)
            data = {"to_department": dept, "action": ACTIONS[x % 4]}
            if event_id := self.send("notification.sent", stream, data, when, trusted=flag):
                self.notifications.append((stream, data))
        elif kind in ("answer", "verify_fail") and self.notifications:
            stream, asked = self.notifications[x % len(self.notifications)]
            event_type, data = ANSWERS[asked["action"]]
            if event_type == "rectification.planned":
                due = (when + timedelta(days=n + 1)).isoformat()
                data = {"plan": "p", "owner_id": who, "due_at": due}
            if kind == "verify_fail":
                event_type, data = "verification.recorded", {"result": "fail"}
            self.send(event_type, stream, data, when, trusted=flag,
                      department=asked["to_department"])  # fmt: skip
        elif kind == "correct" and self.sent:
            event_id, stream_id, data = self.sent[x % len(self.sent)]
            fixed = _corrected(data, flag, dept)
            if fixed is not None:
                correction = {"corrects_event_id": event_id, "reason": "r", "data": fixed}
                self.send("event.corrected", stream_id, correction, when)

    def _plan_op(
        self, kind: str, n: int, x: int, dept: str, who: str, flag: bool, when: datetime
    ) -> None:
        """Costs, targets, revenue and the policy, on the plan stream."""
        plan = f"P-{self.tag}"
        if kind == "cost":
            stream = self.complaint(n, when) if flag else plan
            self.send("quality_cost.recorded", stream,
                      {"amount": f"{x}.{n}5", "currency": "CNY",
                       "category": "internal_failure"}, when)  # fmt: skip
        elif kind == "target":
            level = ("enterprise", "department", "person")[n % 3]
            data: dict[str, Any] = {"period": PERIODS[x % 5], "level": level, "kpi":
                                    ("defect_rate_adjusted", "sla_on_time_rate",
                                     "process_compliance_rate")[x % 3],
                                    "direction": "at_least" if flag else "at_most",
                                    "target": x / 40}  # fmt: skip
            if level != "enterprise":
                data["department"] = "production"
            if level == "person":
                data["person_id"] = who
            self.send("target.set", plan, data, when)
        elif kind == "relative_target":
            self.send("target.set", plan,
                      {"period": "2026-11", "level": "department", "department": "production",
                       "kpi": "defect_rate", "direction": "at_most", "change_pct": -x,
                       "baseline_period": "2026-10"}, when)  # fmt: skip
        elif kind == "revenue":
            self.send("revenue.recorded", plan,
                      {"period": PERIODS[x % 3], "amount": f"{1000 + x}", "currency": "CNY"},
                      when)  # fmt: skip
        elif kind == "policy":
            self.send("policy.set", plan,
                      {"sla": {"windows_hours": {ACTIONS[x % 4]: n + 1},
                               "breach_penalty_points": x % 4}}, when)  # fmt: skip


def _corrected(data: dict[str, Any], flag: bool, dept: str) -> dict[str, Any] | None:
    """A valid correction of `data`: a few fields changed that KPIs read."""
    if "defects" in data:
        defects = 0 if flag else min(data["sample_size"], data["defects"] + 1)
        return {**data, "defects": defects, "result": "fail" if defects else "pass"}
    if "within_spec" in data or "controllable" in data:
        key = "within_spec" if "within_spec" in data else "controllable"
        return {**data, key: flag}
    if "batch_ids" in data:
        return {**data, "batch_ids": data["batch_ids"][:1] if flag else []}
    if "to_department" in data:
        return {**data, "to_department": dept}
    if "amount" in data and "category" in data:
        return {**data, "amount": "1.5"}
    return None


def all_facts(ledger: Ledger) -> list[Fact]:
    facts: list[Fact] = []
    while rows := ledger.feed(facts[-1].position if facts else 0, 1000):
        facts += [Fact.from_row(r) for r in rows]
    return facts


def stored(
    projections: Projections, cut: int, period: str, person: str | None = None, tz: Any = SHANGHAI
) -> bytes:
    """The read model's answer at position `cut` (what `GET /v1/kpis…` returns), the same
    whether its sums are read as a live read reads them or as an as-of read does."""
    facts = [f for f in all_facts(projections.ledger) if f.position <= cut]
    answers = []
    for latest in (True, False):
        load = stored_loader(projections.views, cut, tz, person, latest=latest)
        report = Report(load, plan_facts_of(facts), NOW, person=person)
        if person is None:
            body = department_body(report, Period.parse(period), None, cut)
        else:
            body = person_body(report, Period.parse(period), cut)
        answers.append(orjson.dumps(seal(body)))
    assert answers[0] == answers[1], "live and as-of lookups of the sums differ"
    return answers[0]


def recomputed(
    ledger: Ledger, cut: int, period: str, person: str | None = None, tz: Any = SHANGHAI
) -> bytes:
    facts = [f for f in all_facts(ledger) if f.position <= cut]
    trusted = trusted_sources(ledger)
    if person is None:
        return orjson.dumps(kpis(facts, period, tz, NOW, trusted))
    return orjson.dumps(person_kpis(facts, person, period, tz, NOW, trusted))


def stored_rows(projections: Projections, cut: int) -> list[str]:
    views = projections.views
    with views.transaction(commit=False) as cursor:
        cursor.execute(
            views.sql(
                f"SELECT {COLUMNS} FROM {{rm_kpi_rows}} WHERE valid_from <= ? "
                "AND (valid_to IS NULL OR valid_to > ?)"
            ),
            [cut, cut],
        )
        return sorted(repr(to_row(r)) for r in cursor.fetchall())


def stored_sums(projections: Projections, cut: int) -> dict[Any, Any]:
    views = projections.views
    with views.transaction(commit=False) as cursor:
        cursor.execute(
            views.sql(
                f"SELECT {SUM_COLUMNS}, valid_to FROM {views.table('rm_kpi_sums')} "
                "WHERE valid_from <= ? AND valid_to > ?"
            ),
            [cut, cut],
        )
        found = cursor.fetchall()
    assert all(r["valid_to"] == OPEN for r in found) or cut < projections.kpis.position
    return {
        (r["bucket"], r["person"], r["kpi"], r["department"], r["label"]): (
            Fraction(r["num"]), Fraction(r["den"]), r["entities"],
        )
        for r in found
    }  # fmt: skip


def agree(projections: Projections, cut: int) -> None:
    ledger = projections.ledger
    facts = [f for f in all_facts(ledger) if f.position <= cut]
    rows = ledger_rows(facts, trusted_sources(ledger))
    expected = sorted(repr(r) for r in rows)
    assert stored_rows(projections, cut) == expected
    sums, _ = contribution(rows)  # pre-added by the projector stream by stream, page by page
    assert stored_sums(projections, cut) == sums
    for period in PERIODS:
        assert stored(projections, cut, period) == recomputed(ledger, cut, period), period
    for person in PEOPLE:
        assert stored(projections, cut, "2026", person) == recomputed(ledger, cut, "2026", person)
    for tz in OTHER_ZONES:
        for period in ("2026-10", "2026-Q4"):
            assert stored(projections, cut, period, tz=tz) == recomputed(
                ledger, cut, period, tz=tz
            ), (period, tz)
        assert stored(projections, cut, "2026-11", "E1", tz) == recomputed(
            ledger, cut, "2026-11", "E1", tz
        )


SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    history=st.lists(step, min_size=1, max_size=30),
    chunk=st.integers(1, 6),
    cuts=st.lists(st.integers(1, 30)),
)
def test_the_read_model_equals_the_recomputation_live_as_of_and_after_a_rebuild(
    ledger: Ledger, history: list[Any], chunk: int, cuts: list[int]
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    first = ledger.last_position()
    for i, op in enumerate(history):
        story.play(op)
        if i % chunk == 0:
            projections.kpis.catch_up()  # page by page, as events arrive
    projections.kpis.catch_up()
    last = ledger.last_position()
    agree(projections, last)
    for back in cuts[:3]:  # as of earlier positions of this history
        agree(projections, max(first, last - back))
    projections.kpis.rebuild()
    agree(projections, last)


def test_a_batch_recomputed_in_a_later_page_still_counts_the_complaints_that_name_it(
    ledger: Ledger,
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    when = datetime(2026, 11, 2, tzinfo=UTC)
    batch = story.batch(0, when)
    complaint = story.complaint(0, when + timedelta(days=1))
    story.send("cause.attributed", complaint,
               {"category": "material", "responsible_department": "procurement",
                "controllable": False}, when + timedelta(days=1))  # fmt: skip
    projections.kpis.catch_up()
    story.send("inspection.recorded", batch,
               {"stage": "final", "sample_size": 10, "defects": 1, "result": "fail"},
               when + timedelta(days=2))  # fmt: skip
    projections.kpis.catch_up()
    agree(projections, ledger.last_position())
    body = orjson.loads(stored(projections, ledger.last_position(), "2026-11"))
    production = body["departments"]["production"]["kpis"]
    assert production["defect_rate"]["denominator"] >= 10
    adjusted = [r for r in stored_rows(projections, ledger.last_position()) if batch in r]
    assert not any("defect_rate_adjusted" in r for r in adjusted)


def test_an_unanswered_item_counts_only_once_due_though_its_entity_is_pre_added_when_answered(
    ledger: Ledger,
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    batch = story.batch(0, NOW - timedelta(days=3))
    story.send("notification.sent", batch, {"to_department": "production",
               "action": "investigate"}, NOW - timedelta(hours=1))  # fmt: skip
    projections.kpis.catch_up()
    last = ledger.last_position()
    agree(projections, last)
    body = orjson.loads(stored(projections, last, "2026-11"))
    assert body["departments"]["production"]["kpis"]["sla_on_time_rate"]["denominator"] == 0
    story.send("investigation.reported", batch, {"findings": "f"}, NOW, department="production")
    projections.kpis.catch_up()
    agree(projections, ledger.last_position())
    agree(projections, last)
    body = orjson.loads(stored(projections, ledger.last_position(), "2026-11"))
    assert body["departments"]["production"]["kpis"]["sla_on_time_rate"]["value"] == 1


def test_an_entity_across_a_period_boundary_counts_in_both_periods(ledger: Ledger) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    boundary = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # November begins in Shanghai
    lot = story.lot(0, boundary - timedelta(hours=3), "E2")
    for hours, result in ((-1, "fail"), (1, "pass")):
        story.send("material.tested", lot, {"result": result, "report_id": "r"},
                   boundary + timedelta(hours=hours))  # fmt: skip
    projections.kpis.catch_up()
    agree(projections, ledger.last_position())
    for period, value in (("2026-10", 1), ("2026-11", 0)):
        body = orjson.loads(stored(projections, ledger.last_position(), period))
        reject = body["departments"]["procurement"]["kpis"]["material_reject_rate"]
        assert (reject["value"], reject["denominator"]) == (value, 1)


def test_a_complaint_filed_on_a_long_batch_makes_its_passed_final_inspections_misses(
    ledger: Ledger,
) -> None:
    """The filing is folded onto the batch (no recomputation of its stream): every final
    inspection that passed before it becomes a miss of the one entity, counted once."""
    projections = Projections(ledger)
    story = Story(ledger, projections)
    when = datetime(2026, 11, 2, tzinfo=UTC)
    batch = story.batch(0, when)
    passed = {"stage": "final", "sample_size": 10, "defects": 0, "result": "pass"}
    for hours, who in ((1, "E2"), (2, "E3"), (3, "E2")):
        story.send("inspection.recorded", batch, passed, when + timedelta(hours=hours), who=who)
    projections.kpis.catch_up()
    before = ledger.last_position()
    story.complaint(0, when + timedelta(days=1))
    story.send("inspection.recorded", batch, passed, when + timedelta(days=2), who="E3")
    projections.kpis.catch_up()
    agree(projections, ledger.last_position())
    agree(projections, before)
    body = orjson.loads(stored(projections, ledger.last_position(), "2026-11"))
    miss = body["departments"]["quality"]["kpis"]["inspection_miss_rate"]
    assert (miss["value"], miss["denominator"]) == (1, 1)
    for who in ("E2", "E3"):
        mine = orjson.loads(stored(projections, ledger.last_position(), "2026-11", person=who))
        assert "inspection_miss_rate" in mine["departments"]["quality"]["kpis"], who


def test_a_correction_in_a_long_batch_changes_only_the_corrected_inspections_rows(
    ledger: Ledger,
) -> None:
    """Folded, not recomputed: a final inspection corrected to in-process is no miss any more
    (its entity's sums change), another corrected to a failure counts its defects, and both
    rest on their corrections; every cut agrees with the recomputation."""
    projections = Projections(ledger)
    story = Story(ledger, projections)
    when = datetime(2026, 11, 2, tzinfo=UTC)
    batch = story.batch(0, when)
    passed = {"stage": "final", "sample_size": 10, "defects": 0, "result": "pass"}
    ids = [
        story.send("inspection.recorded", batch, passed, when + timedelta(hours=h), who="E2")
        for h in (1, 2, 3)
    ]
    story.complaint(0, when + timedelta(days=1))
    projections.kpis.catch_up()
    cuts = [ledger.last_position()]
    fixes = (({**passed, "stage": "in_process"}, ids[0]),
             ({**passed, "defects": 4, "result": "fail"}, ids[1]))  # fmt: skip
    for data, target in fixes:
        story.send("event.corrected", batch,
                   {"corrects_event_id": target, "reason": "typo", "data": data},
                   when + timedelta(days=2))  # fmt: skip
        projections.kpis.catch_up()
        cuts.append(ledger.last_position())
    for cut in cuts:
        agree(projections, cut)
    body = orjson.loads(stored(projections, cuts[-1], "2026-11"))
    quality = body["departments"]["quality"]["kpis"]["inspection_miss_rate"]
    production = body["departments"]["production"]["kpis"]["defect_rate"]
    assert (quality["value"], quality["denominator"]) == (1, 1)
    assert production["numerator"] == 4
