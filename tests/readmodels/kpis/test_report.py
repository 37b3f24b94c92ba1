"""KPIs of SPEC §7.4 as a pure function: given events, when read for a period, then figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from ledger.readmodels.facts import Fact
from ledger.readmodels.kpis.report import Period, kpis

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 31, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
UTC_ZONE = ZoneInfo("UTC")
TRUSTED = frozenset({"demo"})


class History:
    """Builds facts; each event is recorded when it occurs, by a trusted source."""

    def __init__(self) -> None:
        self.facts: list[Fact] = []

    def add(
        self,
        event_type: str,
        stream: str,
        data: dict[str, Any],
        *,
        at: timedelta = timedelta(0),
        actor: str = "E1",
        department: str = "quality",
    ) -> str:
        kind = {"M": "batch", "B": "batch", "C": "complaint", "P": "plan"}[stream[0]]
        occurred = T0 + at
        event_id = f"00000000-0000-4000-8000-{len(self.facts) + 1:012d}"
        record = {
            "event_id": event_id,
            "type": event_type,
            "stream": {"type": kind, "id": stream},
            "occurred_at": occurred.isoformat(),
            "actor": {"id": actor, "name": actor, "department": department},
            "source": "demo",
            "data": data,
            "attributes": {},
        }
        self.facts.append(Fact(record, len(self.facts) + 1, occurred))
        return event_id

    def batch(self, batch_id: str, quantity: int = 100, **kw: Any) -> str:
        return self.add("batch.registered", batch_id,
                        {"kind": "production", "product": "frame", "quantity": quantity,
                         "line": "L1"}, department="production", **kw)  # fmt: skip

    def lot(self, lot_id: str, **kw: Any) -> str:
        return self.add("batch.registered", lot_id,
                        {"kind": "material", "product": "tube", "quantity": 1000,
                         "supplier": "S"}, department="procurement", **kw)  # fmt: skip

    def inspect(self, batch_id: str, stage: str, sample: int, defects: int, **kw: Any) -> str:
        result = "fail" if defects else "pass"
        return self.add("inspection.recorded", batch_id,
                        {"stage": stage, "sample_size": sample, "defects": defects,
                         "result": result}, **kw)  # fmt: skip

    def attribute(self, stream: str, department: str, controllable: bool, **kw: Any) -> str:
        return self.add("cause.attributed", stream,
                        {"category": "material", "responsible_department": department,
                         "controllable": controllable}, **kw)  # fmt: skip

    def complaint(self, complaint_id: str, *batches: str, **kw: Any) -> str:
        return self.add("complaint.filed", complaint_id,
                        {"customer": "ACME", "batch_ids": list(batches), "description": "d",
                         "severity": "major"}, department="sales", **kw)  # fmt: skip

    def target(self, **data: Any) -> str:
        body = {"period": "2026", "direction": "at_most", **data}
        return self.add("target.set", "P-1", body, department="management")

    def read(
        self, period: str = "2026-11", now: datetime = NOW, tz: ZoneInfo = UTC_ZONE
    ) -> dict[str, Any]:
        body = kpis(self.facts, period, tz, now, TRUSTED)
        parsed: dict[str, Any] = orjson.loads(orjson.dumps(body))
        return parsed


def kpi(body: dict[str, Any], department: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = body["departments"][department]["kpis"][name]
    return found


def figures(body: dict[str, Any], department: str, name: str) -> tuple[Any, Any, Any]:
    k = kpi(body, department, name)
    return k["value"], k["numerator"], k["denominator"]


def test_periods_are_whole_months_in_the_ledger_time_zone() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    assert Period.parse("2026-11").window(shanghai) == (
        "2026-10-31T16:00:00.000000Z", "2026-11-30T16:00:00.000000Z",
    )  # fmt: skip
    assert Period.parse("2026-Q1").previous() == Period.parse("2025-Q4")
    assert Period.parse("2026-01").previous() == Period.parse("2025-12")
    assert [str(p) for p in Period.parse("2026-11").enclosing()] == ["2026-11", "2026-Q4", "2026"]
    h = History()
    h.batch("B-1")
    # 2026-10-31T20:00Z is already November in Shanghai
    h.inspect("B-1", "final", 10, 1, at=timedelta(days=-2, hours=20))
    assert figures(h.read(tz=shanghai), "production", "defect_rate")[1:] == (1, 10)
    assert figures(h.read(tz=UTC_ZONE), "production", "defect_rate")[1:] == (0, 0)
    assert figures(h.read("2026-10", tz=UTC_ZONE), "production", "defect_rate")[1:] == (1, 10)


def test_the_adjusted_defect_rate_leaves_out_batches_attributed_elsewhere_or_uncontrollable() -> (
    None
):
    h = History()
    for b in ("B-1", "B-2", "B-3", "B-4"):
        h.batch(b)
    h.inspect("B-1", "final", 50, 1)
    h.inspect("B-2", "in_process", 40, 8)
    h.inspect("B-3", "final", 20, 2)
    h.inspect("B-4", "outgoing", 10, 5)  # not an in_process or final inspection
    h.attribute("B-2", "procurement", False)  # material: not production's
    h.attribute("B-3", "production", False)  # uncontrollable
    h.complaint("C-1", "B-1")
    h.attribute("C-1", "production", True, at=H)  # a complaint's attribution names B-1
    body = h.read()
    assert figures(body, "production", "defect_rate") == (
        pytest.approx(11 / 110, abs=1e-6),
        11,
        110,
    )
    assert figures(body, "production", "defect_rate_adjusted") == (0.02, 1, 50)
    # the latest attribution counts: production takes B-2 back
    h.attribute("B-2", "production", True, at=2 * H)
    assert figures(h.read(), "production", "defect_rate_adjusted")[1:] == (9, 90)
    # and a complaint's later attribution can hand B-1 over to procurement
    h.attribute("C-1", "procurement", True, at=3 * H)
    assert figures(h.read(), "production", "defect_rate_adjusted")[1:] == (8, 40)


def test_rework_rate_counts_rework_of_batches_registered_in_the_period() -> None:
    h = History()
    h.batch("B-1", quantity=400)
    h.batch("B-2", quantity=100, at=-5 * D)  # October
    h.add("rework.recorded", "B-1", {"units": 12, "scrapped": 1}, at=40 * D)  # December
    h.add("rework.recorded", "B-2", {"units": 7, "scrapped": 0})
    assert figures(h.read(), "production", "rework_rate") == (0.03, 12, 400)
    assert figures(h.read("2026-10"), "production", "rework_rate") == (0.07, 7, 100)


def test_process_compliance_counts_per_department_and_per_operator() -> None:
    h = History()
    h.batch("B-1")
    for operator, ok in (("E7", True), ("E7", False), ("E8", True)):
        h.add("process.recorded", "B-1",
              {"step": "weld", "within_spec": ok, "operator_id": operator,
               "operator_qualified": True, "equipment_id": "W", "equipment_ok": True},
              department="production")  # fmt: skip
    assert figures(h.read(), "production", "process_compliance_rate")[1:] == (2, 3)


def test_material_reject_rate_counts_lots_once_however_often_they_fail() -> None:
    h = History()
    h.lot("M-1", actor="E20")
    h.lot("M-2", actor="E21")
    h.lot("M-3", actor="E21")
    h.add("material.tested", "M-1", {"result": "fail", "report_id": "R1"})
    h.inspect("M-1", "incoming", 10, 3)
    h.add("material.tested", "M-2", {"result": "pass", "report_id": "R2"})
    h.inspect("M-3", "final", 10, 3)  # not an incoming inspection: M-3 is not counted
    assert figures(h.read(), "procurement", "material_reject_rate") == (0.5, 1, 2)


def test_an_inspection_miss_is_a_passed_final_inspection_of_a_batch_a_later_complaint_names() -> (
    None
):
    h = History()
    for b in ("B-1", "B-2", "B-3"):
        h.batch(b)
        h.inspect(b, "final", 10, 0, actor="E9")
    h.complaint("C-1", "B-1", at=3 * D)
    h.complaint("C-0", "B-2", at=-1 * D)  # filed before the inspection: not a miss
    assert figures(h.read(), "quality", "inspection_miss_rate")[1:] == (1, 3)


def test_a_rectification_counts_when_completed_by_its_due_time_and_verified_pass() -> None:
    h = History()
    h.complaint("C-1")
    due = (T0 + 5 * D).isoformat()
    plan = {"plan": "p", "owner_id": "E3", "due_at": due}
    h.add("rectification.planned", "C-1", plan, department="production")
    h.add("rectification.completed", "C-1", {"summary": "s"}, at=4 * D, department="production")
    h.add("verification.recorded", "C-1", {"result": "pass"}, at=6 * D)
    h.complaint("C-2")
    h.add("rectification.planned", "C-2", plan, department="production")
    h.add("rectification.completed", "C-2", {"summary": "s"}, at=6 * D, department="production")
    h.add("verification.recorded", "C-2", {"result": "pass"}, at=7 * D)
    h.complaint("C-3")
    h.add("rectification.planned", "C-3", plan, department="production")
    h.add("rectification.completed", "C-3", {"summary": "s"}, at=1 * D, department="production")
    h.add("verification.recorded", "C-3", {"result": "fail"}, at=2 * D)
    assert figures(h.read(), "production", "rectification_completion_rate")[1:] == (1, 3)


def test_sla_rates_penalties_and_complaint_timeliness_come_from_the_sla_items() -> None:
    h = History()
    h.complaint("C-1")
    h.add("notification.sent", "C-1", {"to_department": "production", "action": "investigate"})
    h.add("investigation.reported", "C-1", {"findings": "f"}, at=30 * H, department="production")
    h.add("notification.sent", "C-1", {"to_department": "quality", "action": "verify"})
    h.add("verification.recorded", "C-1", {"result": "pass"}, at=H)
    h.complaint("C-2")
    h.add("notification.sent", "C-2", {"to_department": "quality", "action": "verify"},
          at=20 * D)  # fmt: skip
    body = h.read()
    assert figures(body, "production", "sla_on_time_rate")[1:] == (0, 1)
    assert figures(body, "production", "penalty_points")[:2] == (2, 2)
    # C-2's item is due on Nov 25: breached when read on Dec 31, still open on Nov 23
    assert figures(body, "quality", "sla_on_time_rate")[1:] == (1, 2)
    assert figures(body, "quality", "penalty_points")[0] == 2
    early = h.read(now=T0 + 21 * D)
    assert figures(early, "quality", "sla_on_time_rate")[1:] == (1, 1)
    assert figures(early, "quality", "penalty_points")[0] == 0
    # complaints whose items were all met on time: neither C-1 (late) nor C-2 (unanswered)
    assert figures(body, "sales", "complaint_handling_timeliness")[1:] == (0, 2)


def test_complaint_rate_and_repurchase_rate_come_from_shipments() -> None:
    h = History()
    h.batch("B-1")
    h.batch("B-2")
    for batch_id, customer, at in (
        ("B-1", "ACME", -10 * D),
        ("B-1", "Globex", -9 * D),
        ("B-1", "ACME", 0 * D),
        ("B-2", "ACME", D),
    ):
        h.add("shipment.recorded", batch_id,
              {"customer": customer, "quantity": 10, "delivery_id": "D"}, at=at,
              department="sales")  # fmt: skip
    h.complaint("C-1", "B-1", at=2 * D)
    body = h.read()
    assert figures(body, "sales", "complaint_rate") == (0.5, 1, 2)  # two batches shipped
    assert figures(body, "sales", "repurchase_rate") == (0.5, 1, 2)  # ACME again, Globex not


def test_quality_costs_add_up_by_category_and_divide_by_the_revenue_of_the_period() -> None:
    h = History()
    h.complaint("C-1")
    h.add("quality_cost.recorded", "C-1",
          {"amount": "100.10", "currency": "CNY", "category": "external_failure"})  # fmt: skip
    h.add("quality_cost.recorded", "P-1",
          {"amount": "0.20", "currency": "CNY", "category": "prevention"})  # fmt: skip
    h.add("revenue.recorded", "P-1", {"period": "2026-11", "amount": "3000", "currency": "CNY"})
    body = h.read()
    cost = body["enterprise"]["kpis"]["quality_cost"]
    assert cost["value"] == 100.3
    assert cost["by_currency"] == {"CNY": {"external_failure": 100.1, "prevention": 0.2}}
    ratio = body["enterprise"]["kpis"]["quality_cost_ratio"]
    assert (ratio["value"], ratio["denominator"]) == (0.033433, 3000)
    # the year's revenue is the sum of what was recorded for its months
    assert h.read("2026")["enterprise"]["kpis"]["quality_cost_ratio"]["denominator"] == 3000
    assert h.read("2026-10")["enterprise"]["kpis"]["quality_cost_ratio"]["value"] is None


def test_figures_are_exact_decimals_in_the_json() -> None:
    h = History()
    h.complaint("C-1")
    h.add("quality_cost.recorded", "C-1",
          {"amount": "0.1", "currency": "CNY", "category": "appraisal"})  # fmt: skip
    h.add("quality_cost.recorded", "C-1",
          {"amount": "0.2", "currency": "CNY", "category": "appraisal"})  # fmt: skip
    text = orjson.dumps(kpis(h.facts, "2026-11", UTC_ZONE, NOW, TRUSTED))
    assert b'"value":0.3,' in text  # 0.1 + 0.2, not 0.30000000000000004
    parsed = orjson.loads(
        text,
    )
    assert Decimal(str(parsed["enterprise"]["kpis"]["quality_cost"]["value"])) == Decimal("0.3")


def test_targets_cascade_from_enterprise_to_department_to_person_and_name_their_level() -> None:
    h = History()
    h.batch("B-1")
    h.inspect("B-1", "final", 100, 3)
    h.target(level="enterprise", kpi="defect_rate", target=0.05)
    body = h.read()
    k = kpi(body, "production", "defect_rate")
    assert (k["target"], k["met"], k["target_from"]["level"]) == (0.05, True, "enterprise")
    # a department's own target for the quarter wins over the enterprise's for the year
    h.target(level="department", department="production", kpi="defect_rate", target=0.02,
             period="2026-Q4")  # fmt: skip
    k = kpi(h.read(), "production", "defect_rate")
    assert (k["target"], k["met"], k["target_from"]["level"]) == (0.02, False, "department")
    assert k["target_from"]["period"] == "2026-Q4"
    # a target set again replaces the earlier one
    h.target(level="department", department="production", kpi="defect_rate", target=0.03,
             period="2026-Q4")  # fmt: skip
    assert kpi(h.read(), "production", "defect_rate")["met"] is True


def test_a_relative_target_resolves_against_the_baseline_period_value() -> None:
    h = History()
    h.batch("B-0", at=-40 * D)
    h.inspect("B-0", "final", 100, 4, at=-40 * D)  # September: 4 %
    h.batch("B-1")
    h.inspect("B-1", "final", 100, 4)  # November: 4 %
    h.target(level="enterprise", kpi="defect_rate", change_pct=-5, baseline_period="2026-09")
    k = kpi(h.read(), "production", "defect_rate")
    assert k["target"] == 0.038  # 0.04 × 0.95
    assert k["target_from"]["baseline_value"] == 0.04
    assert k["target_from"]["baseline_period"] == "2026-09"
    assert k["target_from"]["change_pct"] == -5
    assert k["met"] is False


def test_incentives_follow_the_policy_in_force_and_need_a_target() -> None:
    h = History()
    h.batch("B-1")
    h.inspect("B-1", "final", 100, 1)
    assert h.read()["departments"]["production"]["incentives"] == {}
    h.target(level="department", department="production", kpi="defect_rate_adjusted",
             target=0.02)  # fmt: skip
    assert h.read()["departments"]["production"]["incentives"] == {"bonus_pct": 10}
    h.add("policy.set", "P-1", {"incentives": [
        {"department": "production", "kpi": "defect_rate_adjusted", "outcome": "bonus_pct",
         "met": 12.5, "missed": -7},
    ]})  # fmt: skip
    assert h.read()["departments"]["production"]["incentives"] == {"bonus_pct": 12.5}
    assert h.read()["departments"]["sales"]["incentives"] == {}


def test_a_correction_counts_from_its_position_on() -> None:
    h = History()
    h.batch("B-1")
    inspection = h.inspect("B-1", "final", 50, 5)
    fixed = {"stage": "final", "sample_size": 50, "defects": 1, "result": "fail"}
    h.add("event.corrected", "B-1", {"corrects_event_id": inspection, "reason": "typo",
                                     "data": fixed})  # fmt: skip
    assert figures(h.read(), "production", "defect_rate")[1:] == (1, 50)
    before = kpis(h.facts[:-1], "2026-11", UTC_ZONE, NOW, TRUSTED)
    assert (
        orjson.loads(orjson.dumps(before))["departments"]["production"]["kpis"]["defect_rate"][
            "numerator"
        ]
        == 5
    )


def test_periods_at_the_ends_of_the_calendar_are_empty_not_errors() -> None:
    h = History()
    h.batch("B-1")
    for period in ("0000", "0001-01", "9999", "9999-Q4", "9999-12"):
        assert h.read(period, tz=ZoneInfo("Asia/Shanghai"))["period"] == period
