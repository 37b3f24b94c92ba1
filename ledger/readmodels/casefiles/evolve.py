"""What one event of a batch stream (a production batch or a material lot) adds to the case
files: its stream's summary after it, and how the responsibility chain reads it. Pure: no
ledger, no database.

They give, event by event, what `timeline.evolve.summary` and `responsibility.evolve` compute
from a stream's counted events (and the events a stream's SLA items depend on); a correction
changes the summary (when it corrects the registration) and the reading of the event it
corrects, from its position on.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.time import format_time
from ledger.readmodels.facts import Fact
from ledger.readmodels.responsibility.evolve import process_category
from ledger.readmodels.sla.evolve import FULFILLED_BY

# How the responsibility chain reads an event: the kind of evidence it is, and its detail
# (the attribution, for a `cause.attributed`).
Evidence = tuple[str, dict[str, Any] | None]
PROCESS_KINDS = ("operator", "equipment", "process")
# The events a stream's SLA items depend on (`sla_items` reads no other), besides corrections
# of them: the chain reads them as evidence of kind "sla".
SLA_TYPES = frozenset({"notification.sent", "escalation.raised", *FULFILLED_BY.values()})


def evidence(event_type: str, event_id: str, data: dict[str, Any]) -> Evidence | None:
    """How an event of `event_type` with `data` (its own, or its correction's) counts."""
    if event_type == "material.tested":
        return ("material", None) if data["result"] == "fail" else None
    if event_type == "inspection.recorded":
        if data["stage"] == "incoming" and data["result"] == "fail":
            return "material", None
        if data["stage"] in ("final", "outgoing") and data["result"] == "pass":
            return "passed_final", None
        return None
    if event_type == "process.recorded":
        return None if data["within_spec"] else (process_category(data), None)
    if event_type in SLA_TYPES:
        return "sla", None
    if event_type == "cause.attributed":
        return "attribution", {
            "event_id": event_id,
            "category": data["category"],
            "responsible_department": data["responsible_department"],
            "controllable": data["controllable"],
            "evidence_event_ids": data.get("evidence_event_ids", []),
        }
    return None


def empty_summary(stream_id: str) -> dict[str, Any]:
    """The summary of a stream before its first event."""
    return {
        "batch_id": stream_id,
        "kind": None,
        "product": None,
        "material_lots": [],
        "events": 0,
        "types": {},
        "first_occurred_at": None,
        "last_occurred_at": None,
        "last_position": 0,
    }


def summarized(
    summary: dict[str, Any], fact: Fact, corrected: Fact | None = None
) -> dict[str, Any]:
    """The stream's summary after `fact`; `corrected` is the event a correction corrects."""
    after = counted(summary, fact.position, fact.type, format_time(fact.occurred_at))
    registered: dict[str, Any] | None = None
    if fact.type == "batch.registered" and summary["kind"] is None:
        registered = fact.record["data"]
    elif corrected is not None and corrected.type == "batch.registered":
        registered = fact.record["data"]["data"]
    if registered is not None:
        after["kind"] = registered.get("kind")
        after["product"] = registered.get("product")
        after["material_lots"] = list(registered.get("material_lots", []))
    return after


def counted(summary: dict[str, Any], position: int, event_type: str, at: str) -> dict[str, Any]:
    """The summary after one more event of `event_type` that occurred `at` (UTC text): what
    any event but the registration and its corrections changes."""
    types = dict(summary["types"])
    types[event_type] = types.get(event_type, 0) + 1
    first, last = summary["first_occurred_at"], summary["last_occurred_at"]
    return {
        **summary,
        "events": summary["events"] + 1,
        "types": dict(sorted(types.items())),
        "first_occurred_at": at if first is None else min(first, at),
        "last_occurred_at": at if last is None else max(last, at),
        "last_position": max(summary["last_position"], position),
    }


def checkpoint(summary: dict[str, Any], fact: Fact, corrected: Fact | None) -> bool:
    """Whether the summary after `fact` is stored: after a stream's first event, every
    `CHECKPOINT`-th and whatever changes the registration, so a summary at any position is the
    stored one before it plus fewer than `CHECKPOINT` events, each of which only `counted`."""
    return (
        summary["events"] % CHECKPOINT == 0
        or summary["events"] == 1
        or fact.type == "batch.registered"
        or (corrected is not None and corrected.type == "batch.registered")
    )


CHECKPOINT = 64  # events of a stream between two of its stored summaries, at most
