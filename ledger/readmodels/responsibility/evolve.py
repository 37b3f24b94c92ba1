"""The responsibility chain of a complaint (SPEC §7.2): a pure function of its events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.domain.time import format_time, parse_time
from ledger.readmodels.facts import Fact, effective_data, linked_batches, material_lots, sealed


def attributions(facts: list[Fact]) -> list[dict[str, Any]]:
    data = effective_data(facts)
    return [
        {
            "event_id": f.event_id,
            "category": data[f.event_id]["category"],
            "responsible_department": data[f.event_id]["responsible_department"],
            "controllable": data[f.event_id]["controllable"],
            "evidence_event_ids": data[f.event_id].get("evidence_event_ids", []),
        }
        for f in sorted(facts, key=lambda f: f.position)
        if f.type == "cause.attributed"
    ]


def suggested_causes(
    complaint: list[Fact], by_stream: dict[str, list[Fact]]
) -> list[dict[str, Any]]:
    """The ledger's own ranked reading of the evidence; never an attribution by itself."""
    suggestions: list[dict[str, Any]] = []
    for batch_id in linked_batches(complaint):
        batch = by_stream.get(batch_id, [])
        data = effective_data(batch)
        for lot_id in material_lots(batch):
            lot = by_stream.get(lot_id, [])
            lot_data = effective_data(lot)
            failed = [
                f.event_id
                for f in lot
                if (f.type == "material.tested" and lot_data[f.event_id]["result"] == "fail")
                or (
                    f.type == "inspection.recorded"
                    and lot_data[f.event_id]["stage"] == "incoming"
                    and lot_data[f.event_id]["result"] == "fail"
                )
            ]
            if failed:
                suggestions.append(material_cause(lot_id, failed))
        for f in batch:
            d = data[f.event_id]
            if f.type == "process.recorded" and not d["within_spec"]:
                suggestions.append(process_cause(process_category(d), f.event_id))
        passed_final = [
            f.event_id
            for f in batch
            if f.type == "inspection.recorded"
            and data[f.event_id]["stage"] in ("final", "outgoing")
            and data[f.event_id]["result"] == "pass"
        ]
        if passed_final:
            suggestions.append(inspection_cause(batch_id, passed_final))
    return ranked(suggestions)


# Why a process record out of spec is suggested, by its category.
PROCESS_RULES = {
    "operator": "process out of spec, run by an unqualified operator",
    "equipment": "process out of spec on equipment not ok",
    "process": "process recorded out of spec",
}
# Ranked: direct process evidence first, then material, then the inspection miss.
RANK = {"operator": 0, "equipment": 1, "process": 2, "material": 3, "inspection": 4}


def process_category(data: dict[str, Any]) -> str:
    """The cause a process record out of spec points to."""
    if not data["operator_qualified"]:
        return "operator"
    if not data["equipment_ok"]:
        return "equipment"
    return "process"


def material_cause(lot_id: str, failed: list[str]) -> dict[str, Any]:
    return _cause("material", "procurement", False, failed,
                  f"material lot {lot_id} failed its test or incoming inspection")  # fmt: skip


def process_cause(category: str, event_id: str) -> dict[str, Any]:
    return _cause(category, "production", True, [event_id], PROCESS_RULES[category])


def inspection_cause(batch_id: str, passed: list[str]) -> dict[str, Any]:
    return _cause("inspection", "quality", True, passed,
                  f"batch {batch_id} passed its final inspection yet drew a complaint")  # fmt: skip


def ranked(suggestions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(suggestions, key=lambda s: (RANK[s["category"]], s["evidence_event_ids"]))


def _cause(
    category: str, department: str, controllable: bool, evidence: list[str], rule: str
) -> dict[str, Any]:
    return {
        "category": category,
        "responsible_department": department,
        "controllable": controllable,
        "evidence_event_ids": evidence,
        "rule": rule,
    }


def responsibility(
    complaint_id: str,
    facts: list[Fact],
    items: list[dict[str, Any]],
    now: datetime,
    position: int,
) -> dict[str, Any]:
    """Attributions, suggested causes, custody periods, holding time and breaches."""
    by_stream: dict[str, list[Fact]] = {}
    for f in facts:
        by_stream.setdefault(f.stream[1], []).append(f)
    complaint = [f for f in facts if f.stream == ("complaint", complaint_id)]
    return chain(
        complaint_id, attributions(facts), suggested_causes(complaint, by_stream), items, now,
        position,
    )  # fmt: skip


def chain(
    complaint_id: str,
    attributed: list[dict[str, Any]],
    suggested: list[dict[str, Any]],
    items: list[dict[str, Any]],
    now: datetime,
    position: int,
) -> dict[str, Any]:
    """The chain of its attributions, suggested causes and SLA items (custody, holding time
    and breaches at `now`)."""
    custody = []
    holding: dict[str, int] = {}
    breaches: dict[str, int] = {}
    for item in sorted(items, key=lambda i: (i["opened_at"], i["notification_event_id"])):
        start = parse_time(item["opened_at"])
        end = parse_time(item["fulfilled_at"]) if item["fulfilled_at"] else now
        seconds = max(0, int((end - start).total_seconds()))
        dept = item["department"]
        custody.append(
            {
                "department": dept,
                "action": item["action"],
                "from": item["opened_at"],
                "until": item["fulfilled_at"] or format_time(now),
                "seconds": seconds,
                "state": item["state"],
            }
        )
        holding[dept] = holding.get(dept, 0) + seconds
        breaches.setdefault(dept, 0)
        if item["state"] in ("breached", "met_late"):
            breaches[dept] += 1
    return sealed(
        {
            "complaint_id": complaint_id,
            "attributions": attributed,
            "suggested_causes": suggested,
            "custody": custody,
            "holding_seconds": holding,
            "breaches": breaches,
            "position": position,
        }
    )
