"""SPEC §9's demo: weld cracks on batch B-2026-0142, and a second line stopped by bad steel.

Every event has a fixed id, so running the demo again appends nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from ledger.domain.access import DEMO_SOURCE
from ledger.domain.events import ENVELOPE_MODELS
from ledger.readmodels.projections import Projections
from ledger.watcher import tick

DEMO_NAMESPACE = uuid5(NAMESPACE_URL, "https://quality-ledger.invalid/demo")

PEOPLE = {
    "buyer": {"id": "E2001", "name": "Li Wei", "department": "procurement"},
    "lab": {"id": "E1101", "name": "Zhao Min", "department": "quality"},
    "planner": {"id": "E3001", "name": "Chen Gang", "department": "production"},
    "welder": {"id": "E3107", "name": "Sun Hao", "department": "production"},
    "inspector": {"id": "E1024", "name": "王芳", "department": "quality"},
    "sales": {"id": "E4002", "name": "Liu Yang", "department": "sales"},
    "director": {"id": "E1000", "name": "Zhou Jie", "department": "quality"},
    "controller": {"id": "E5001", "name": "He Lin", "department": "management"},
}


def _id(name: str) -> str:
    return str(uuid5(DEMO_NAMESPACE, name))


def _event(
    name: str, event_type: str, stream: str, at: str, who: str, data: dict[str, Any]
) -> dict[str, Any]:
    stream_type = {"M": "batch", "B": "batch", "C": "complaint", "P": "plan"}[stream[0]]
    return {
        "event_id": _id(name),
        "type": event_type,
        "stream": {"type": stream_type, "id": stream},
        "occurred_at": f"2026-11-{at}+08:00",
        "actor": PEOPLE[who],
        "data": data,
    }


def before_escalation() -> list[dict[str, Any]]:
    """Steps 1–4 up to quality's notification to production."""
    e = _event
    return [
        e("lot-0107", "batch.registered", "M-2026-0107", "02T08:00:00", "buyer",
          {"kind": "material", "product": "steel tube 40x2", "quantity": 2000,
           "supplier": "Hebei Steel"}),
        e("lot-0107-test", "material.tested", "M-2026-0107", "02T10:00:00", "lab",
          {"result": "pass", "report_id": "LIMS-7781",
           "properties": {"tensile_mpa": 412, "elongation_pct": 24.5}}),
        e("batch-0142", "batch.registered", "B-2026-0142", "03T08:00:00", "planner",
          {"kind": "production", "product": "welded frame", "quantity": 500, "line": "L1",
           "material_lots": ["M-2026-0107"]}),
        e("batch-0142-weld", "process.recorded", "B-2026-0142", "03T10:00:00", "welder",
          {"step": "welding", "parameters": {"current_a": 212, "voltage_v": 27.5},
           "within_spec": False, "operator_id": "E3107", "operator_qualified": False,
           "equipment_id": "WELD-07", "equipment_ok": True}),
        e("batch-0142-final", "inspection.recorded", "B-2026-0142", "03T16:00:00", "inspector",
          {"stage": "final", "sample_size": 50, "defects": 0, "result": "pass"}),
        e("batch-0142-ship", "shipment.recorded", "B-2026-0142", "04T09:00:00", "sales",
          {"customer": "Northwind Cycles", "quantity": 500, "delivery_id": "DN-55120"}),
        e("complaint-0031", "complaint.filed", "C-2026-0031", "06T09:00:00", "sales",
          {"customer": "Northwind Cycles", "batch_ids": ["B-2026-0142"],
           "description": "Customer returns the batch: weld cracks on 37 frames",
           "severity": "major"}),
        e("complaint-0031-plan-request", "notification.sent", "C-2026-0031", "06T10:00:00",
          "director",
          {"to_department": "production", "action": "rectification_plan",
           "message": "Send the rectification plan for the cracked welds within 24 h"}),
    ]  # fmt: skip


def after_escalation() -> list[dict[str, Any]]:
    """Steps 4–7: the late plan, the attribution, closure, and the second line."""
    e = _event
    return [
        e("complaint-0031-plan", "rectification.planned", "C-2026-0031", "07T16:00:00",
          "planner",
          {"plan": "Requalify welder E3107, re-weld and X-ray all returned frames",
           "owner_id": "E3001", "due_at": "2026-11-14T16:00:00+08:00"}),
        e("complaint-0031-investigation", "investigation.reported", "C-2026-0031",
          "08T10:00:00", "director",
          {"findings": "Welding ran out of spec; the welder's qualification had lapsed"}),
        e("complaint-0031-cause", "cause.attributed", "C-2026-0031", "08T11:00:00", "director",
          {"category": "operator", "responsible_department": "production",
           "controllable": True,
           "evidence_event_ids": [_id("lot-0107-test"), _id("batch-0142-weld")],
           "note": "Material passed its test; the process record shows the lapse"}),
        e("complaint-0031-rectify-request", "notification.sent", "C-2026-0031",
          "08T12:00:00", "director",
          {"to_department": "production", "action": "rectify",
           "message": "Carry out the plan"}),
        e("complaint-0031-rectified", "rectification.completed", "C-2026-0031",
          "12T10:00:00", "planner", {"summary": "500 frames re-welded and X-rayed"}),
        e("complaint-0031-verify-request", "notification.sent", "C-2026-0031", "12T11:00:00",
          "planner", {"to_department": "quality", "action": "verify", "message": "Verify"}),
        e("complaint-0031-verified", "verification.recorded", "C-2026-0031", "13T10:00:00",
          "inspector", {"result": "pass", "note": "X-ray clean on a 10 % sample"}),
        e("complaint-0031-confirm-request", "notification.sent", "C-2026-0031",
          "13T11:00:00", "director",
          {"to_department": "sales", "action": "confirm_customer",
           "message": "Confirm with Northwind Cycles"}),
        e("complaint-0031-cost", "quality_cost.recorded", "C-2026-0031", "13T12:00:00",
          "controller",
          {"amount": "18400.00", "currency": "CNY", "category": "external_failure"}),
        e("complaint-0031-closed", "complaint.closed", "C-2026-0031", "14T10:00:00", "sales",
          {"customer_satisfied": True}),
        e("lot-0119", "batch.registered", "M-2026-0119", "09T08:00:00", "buyer",
          {"kind": "material", "product": "steel tube 40x2", "quantity": 1500,
           "supplier": "Tangshan Metals"}),
        e("batch-0150", "batch.registered", "B-2026-0150", "09T09:00:00", "planner",
          {"kind": "production", "product": "welded frame", "quantity": 300, "line": "L2",
           "material_lots": ["M-2026-0119"]}),
        e("lot-0119-incoming", "inspection.recorded", "M-2026-0119", "09T10:00:00",
          "inspector",
          {"stage": "incoming", "sample_size": 20, "defects": 6, "result": "fail",
           "defect_codes": ["WALL-THIN"]}),
        e("batch-0150-in-process", "inspection.recorded", "B-2026-0150", "09T12:00:00",
          "inspector",
          {"stage": "in_process", "sample_size": 40, "defects": 8, "result": "fail",
           "defect_codes": ["WALL-THIN"]}),
        e("batch-0150-cause", "cause.attributed", "B-2026-0150", "09T15:00:00", "director",
          {"category": "material", "responsible_department": "procurement",
           "controllable": False, "evidence_event_ids": [_id("lot-0119-incoming")],
           "note": "Line L2 stopped: tube wall below spec from the supplier"}),
        e("target-defect-rate", "target.set", "P-2026", "01T09:00:00", "director",
          {"period": "2026", "level": "department", "department": "production",
           "kpi": "defect_rate_adjusted", "direction": "at_most", "target": 0.02}),
        e("target-timeliness", "target.set", "P-2026", "01T09:00:00", "director",
          {"period": "2026", "level": "department", "department": "sales",
           "kpi": "complaint_handling_timeliness", "direction": "at_least", "target": 0.9}),
        e("target-rectification", "target.set", "P-2026", "01T09:00:00", "director",
          {"period": "2026", "level": "department", "department": "quality",
           "kpi": "rectification_completion_rate", "direction": "at_least", "target": 0.9}),
        e("revenue-2026-11", "revenue.recorded", "P-2026", "20T09:00:00", "controller",
          {"period": "2026-11", "amount": "2400000.00", "currency": "CNY"}),
    ]  # fmt: skip


def run(projections: Projections, now: datetime, say: Callable[[str], None] = print) -> int:
    """Append the scenario (running the SLA watcher where the story needs it); return how many
    events this run appended."""
    ledger = projections.ledger
    appended = 0
    for part in (before_escalation(), None, after_escalation(), None):
        if part is None:
            appended += tick(projections, now)
            continue
        envelopes = [ENVELOPE_MODELS[e["type"]].model_validate(e) for e in part]
        appended += ledger.append(envelopes, source=DEMO_SOURCE, skip_stored=True).appended
    say(
        f"demo: appended {appended} event(s)"
        if appended
        else "demo: nothing to append, the scenario is already in the ledger"
    )
    return appended
