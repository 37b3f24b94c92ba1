"""The dispute timeline of a complaint or batch (SPEC §5, §7.1): a pure function of its events."""

from __future__ import annotations

from typing import Any

from ledger.projections.facts import Fact, effective_data, sealed


def linked_batches(complaint: list[Fact]) -> list[str]:
    """The batches a complaint names, with corrections to `complaint.filed` applied."""
    data = effective_data(complaint)
    ids: list[str] = []
    for f in complaint:
        if f.type == "complaint.filed":
            ids += [b for b in data[f.event_id].get("batch_ids", []) if b not in ids]
    return ids


def material_lots(batch: list[Fact]) -> list[str]:
    """The material lots a production batch was made from, with corrections applied."""
    data = effective_data(batch)
    for f in batch:
        if f.type == "batch.registered":
            return list(data[f.event_id].get("material_lots", []))
    return []


def timeline(subject: dict[str, str], facts: list[Fact], position: int) -> dict[str, Any]:
    """Every event of the subject's streams, ordered by occurred_at then position.

    An event that a counted correction corrects carries `corrected_by`; the correction is shown
    beside it as an event of its own.
    """
    corrected_by: dict[str, str] = {}
    for f in sorted(facts, key=lambda f: f.position):
        if f.type == "event.corrected":
            corrected_by.setdefault(f.record["data"]["corrects_event_id"], f.event_id)
    events = []
    for f in sorted(facts, key=lambda f: (f.occurred_at, f.position)):
        view = f.view()
        if f.event_id in corrected_by:
            view["corrected_by"] = corrected_by[f.event_id]
        events.append(view)
    return sealed({**subject, "events": events, "position": position})
