"""The event log: append envelopes, follow the feed."""

from __future__ import annotations

from typing import Annotated, Any, Union

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from starlette.responses import Response

from ledger.api.auth import Appender, EventReader, check_append, corrected_events
from ledger.api.deps import LedgerDep
from ledger.api.problems import documented
from ledger.api.responses import ORJSON, raw_events
from ledger.api.routing import LedgerRoute, direct
from ledger.api.schemas import Receipts, StoredEventPage
from ledger.application import MAX_BATCH
from ledger.domain.events import Envelope

router = APIRouter(prefix="/v1", tags=["events"], route_class=LedgerRoute)
MAX_POSITION = 2**63 - 1  # positions are 64-bit in both databases


class EventBatch(BaseModel):
    """Several envelopes appended all-or-nothing, possibly across streams."""

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[Envelope], Field(min_length=1, max_length=MAX_BATCH)]


def _shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "single"


AppendBody = Annotated[
    Union[Annotated[Envelope, Tag("single")], Annotated[EventBatch, Tag("batch")]],  # noqa: UP007
    Discriminator(_shape),
]


@router.post(
    "/events",
    status_code=201,
    response_model=Receipts,
    responses={
        200: {"model": Receipts, "description": "An exact retry: the original receipts"},
        **documented(400, 401, 403, 409, 413, 422, 429, 503),
    },
)
@direct
def append_events(body: AppendBody, ledger: LedgerDep, principal: Appender) -> Response:
    """Append one envelope, or a batch all-or-nothing; 201 with receipts, 200 for a retry."""
    envelopes = body.events if isinstance(body, EventBatch) else [body]
    check_append(principal, envelopes, corrected_events(envelopes, ledger.store.lookup))
    result = ledger.append(envelopes, source=principal.name)
    return ORJSON({"receipts": result.receipts}, status_code=201 if result.created else 200)


@router.get(
    "/events",
    response_model=StoredEventPage,
    responses=documented(400, 401, 403, 422, 429, 503),
)
def read_feed(
    ledger: LedgerDep,
    principal: EventReader,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="the last position already read")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The global feed in position order; `next_after` continues it."""
    rows = ledger.feed(after, limit)
    next_after = rows[-1].position if rows else after
    return raw_events("events", [r.json() for r in rows], next_after=next_after)
