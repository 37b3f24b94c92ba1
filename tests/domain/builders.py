"""Builders of the domain tests: records as the ledger hands them to its streams, and streams
given their history. given(records) / when(record) / then(records appended, or the error)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import TypeAdapter

from ledger.domain.aggregates import STREAM_CLASSES
from ledger.domain.events import VOCABULARY, Envelope, EnvelopeBase
from ledger.domain.stream import LedgerStream

# The ledger's clock in these tests: fixed, and never the real one, so they pass on any date.
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

STREAM_IDS = {"batch": "B-2026-0142", "complaint": "C-2026-0007", "plan": "P-2026"}

# Valid data of every event type, as a sender would send it.
DATA: dict[str, dict[str, Any]] = {
    "batch.registered": {
        "kind": "production",
        "product": "welded frame",
        "quantity": 500,
        "line": "L2",
        "material_lots": ["M-2026-0107"],
    },
    "material.tested": {"result": "pass", "report_id": "LIMS-1", "properties": {"yield": 355}},
    "process.recorded": {
        "step": "welding",
        "parameters": {"current_a": 180.5},
        "within_spec": True,
        "operator_id": "E2001",
        "operator_qualified": True,
        "equipment_id": "W-07",
        "equipment_ok": True,
    },
    "inspection.recorded": {
        "stage": "final",
        "sample_size": 50,
        "defects": 2,
        "result": "fail",
        "defect_codes": ["WELD-CRACK"],
    },
    "rework.recorded": {"units": 3, "scrapped": 1},
    "shipment.recorded": {"customer": "ACME", "quantity": 500, "delivery_id": "D-1"},
    "complaint.filed": {
        "customer": "ACME",
        "batch_ids": ["B-2026-0142"],
        "description": "weld cracks",
        "severity": "major",
    },
    "notification.sent": {
        "to_department": "production",
        "action": "investigate",
        "due_at": "2026-11-27T12:00:00+00:00",
        "message": "please investigate",
    },
    "investigation.reported": {"findings": "operator not qualified"},
    "cause.attributed": {
        "category": "operator",
        "responsible_department": "production",
        "controllable": True,
        "evidence_event_ids": [str(uuid.UUID(int=1))],
        "note": "",
    },
    "rectification.planned": {
        "plan": "retrain welders",
        "owner_id": "E2001",
        "due_at": "2026-12-10T12:00:00+00:00",
    },
    "rectification.completed": {"summary": "welders retrained"},
    "verification.recorded": {"result": "pass", "note": "no cracks in 3 batches"},
    "complaint.closed": {"customer_satisfied": True},
    "complaint.reopened": {"reason": "cracks again"},
    "quality_cost.recorded": {
        "amount": "1250.00",
        "currency": "CNY",
        "category": "external_failure",
    },
    "event.corrected": {
        "corrects_event_id": str(uuid.UUID(int=2)),
        "reason": "typo",
        "data": {"findings": "operator not qualified"},
    },
    "target.set": {
        "period": "2026",
        "level": "enterprise",
        "kpi": "defect_rate",
        "direction": "at_most",
        "target": 0.02,
    },
    "policy.set": {"sla": {"windows_hours": {"investigate": 24}}, "incentives": []},
    "revenue.recorded": {"period": "2026-Q1", "amount": "1000000.00", "currency": "CNY"},
    "escalation.raised": {
        "notification_event_id": str(uuid.UUID(int=3)),
        "department": "production",
        "escalated_to": "management",
        "due_at": "2026-11-25T12:00:00+00:00",
    },
}
assert DATA.keys() == VOCABULARY.keys(), "every event type has its example data"

MATERIAL_LOT = {"kind": "material", "product": "steel tube", "quantity": 2000, "supplier": "Bao"}


def at(offset: timedelta = timedelta()) -> str:
    """An RFC 3339 time `offset` after NOW."""
    return (NOW + offset).isoformat()


def home(event_type: str) -> str:
    """The stream type an event of this type goes to by default: the first it may go to."""
    return VOCABULARY[event_type][1][0]


def record(
    event_type: str,
    data: dict[str, Any] | None = None,
    *,
    stream_type: str | None = None,
    stream_id: str | None = None,
    occurred_at: str | None = None,
    department: str = "quality",
) -> dict[str, Any]:
    """A record as the ledger hands it to a stream: what the sender chose plus `source`."""
    stream_type = stream_type or home(event_type)
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "stream": {"type": stream_type, "id": stream_id or STREAM_IDS[stream_type]},
        "occurred_at": occurred_at or at(-timedelta(hours=1)),
        "actor": {"id": "E1024", "name": "王芳", "department": department},
        "source": "mes",
        "data": DATA[event_type] if data is None else data,
        "attributes": {},
    }


def corrected(original: dict[str, Any], data: dict[str, Any] | None = None) -> dict[str, Any]:
    """An `event.corrected` of `original`, on its stream, by its actor."""
    correction = record(
        "event.corrected",
        {
            "corrects_event_id": original["event_id"],
            "reason": "wrong figure",
            "data": original["data"] if data is None else data,
        },
        stream_type=original["stream"]["type"],
        stream_id=original["stream"]["id"],
    )
    correction["actor"] = original["actor"]
    return correction


# A stream never written: `when(NEW_STREAM, record)` opens one.
NEW_STREAM: LedgerStream | None = None


def given(*history: dict[str, Any]) -> LedgerStream:
    """The stream these records made, appended as the ledger would (they must be valid)."""
    stream = NEW_STREAM
    for r in history:
        stream = when(stream, r, system=True)
    assert stream is not None, "a history has at least one event"
    stream.collect_events()
    return stream


def when(stream: LedgerStream | None, r: dict[str, Any], *, system: bool = False) -> LedgerStream:
    """Append `r` to `stream` (opening a new stream when None); the stream, with the appended
    event pending (see `appended`)."""
    if stream is None:
        return STREAM_CLASSES[r["stream"]["type"]].open(r, system=system)
    stream.record(r, system=system)
    return stream


def appended(stream: LedgerStream) -> list[dict[str, Any]]:
    """The sealed records the last commands appended (then: what the ledger would store)."""
    events: Sequence[Any] = stream.collect_events()
    return [e.record for e in events]


def envelope(event_type: str, data: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """What a sender posts: a record without the `source` the ledger stamps, plus `fields`."""
    body = record(event_type, data)
    del body["source"]
    return {**body, **fields}


_ENVELOPE: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)


def validated(body: dict[str, Any]) -> EnvelopeBase:
    """The envelope as the ledger reads it off the wire (ValidationError when refused)."""
    return _ENVELOPE.validate_json(orjson.dumps(body))
