"""Response models: what the OpenAPI page documents for each route."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from ledger.domain.events import Actor, Stream


class Receipt(BaseModel):
    event_id: UUID
    stream: Stream
    version: int
    position: int
    recorded_at: str = Field(json_schema_extra={"format": "date-time"})
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class Receipts(BaseModel):
    receipts: list[Receipt]


class EventView(BaseModel):
    """An event as the reads show it: the sender's fields plus what the ledger stamped."""

    position: int
    recorded_at: str = Field(json_schema_extra={"format": "date-time"})
    event_id: UUID
    type: str
    stream: Stream
    version: int
    occurred_at: str = Field(json_schema_extra={"format": "date-time"})
    actor: Actor
    source: str
    data: dict[str, Any]
    attributes: dict[str, Any]
    hash: str


class StoredEvent(EventView):
    """An event as stored, with its link in the stream's hash chain."""

    prev_hash: str


class StoredEventPage(BaseModel):
    events: list[StoredEvent]
    next_after: int


class StreamEvents(BaseModel):
    events: list[StoredEvent]


class TimelineEvent(EventView):
    """An event on a timeline: `corrected_by` names a counted correction of it."""

    corrected_by: UUID | None = None


class BatchSummary(BaseModel):
    """A batch or lot of a timeline as its first page sums it up, from the events counted."""

    batch_id: str
    kind: str | None
    product: str | None
    material_lots: list[str]
    events: int
    types: dict[str, int]
    first_occurred_at: str | None
    last_occurred_at: str | None
    last_position: int


class Timeline(BaseModel):
    """A page of events ordered by occurred_at then position; `position` is the last one counted.
    The first page holds the complaint's own events and `batches`; `next_cursor` (null on the
    last page) continues the walk."""

    complaint_id: str | None = None
    batch_id: str | None = None
    events: list[TimelineEvent]
    batches: list[BatchSummary] | None = None
    position: int
    next_cursor: str | None
    fingerprint: str


class SlaItem(BaseModel):
    stream: Stream
    notification_event_id: UUID
    department: str
    action: str
    opened_at: str
    due_at: str
    fulfilled_at: str | None
    fulfilled_by: UUID | None
    state: str
    escalated: bool
    backdated: bool
    penalty_points: float
    escalate_to: str


class SlaBoard(BaseModel):
    """A page of items by due time; `next_cursor` (null on the last page) continues the walk."""

    items: list[SlaItem]
    position: int
    next_cursor: str | None
    fingerprint: str


class Custody(BaseModel):
    department: str
    action: str
    from_: str = Field(alias="from")
    until: str
    seconds: int
    state: str


class Cause(BaseModel):
    category: str
    responsible_department: str
    controllable: bool
    evidence_event_ids: list[UUID]


class SuggestedCause(Cause):
    rule: str


class Attribution(Cause):
    event_id: UUID


class Responsibility(BaseModel):
    complaint_id: str
    attributions: list[Attribution]
    suggested_causes: list[SuggestedCause]
    custody: list[Custody]
    holding_seconds: dict[str, int]
    breaches: dict[str, int]
    position: int
    fingerprint: str
