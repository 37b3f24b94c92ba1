"""One stream's events, in version order."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.responses import Response

from ledger.api.auth import EventReader
from ledger.api.deps import LedgerDep
from ledger.api.problems import documented
from ledger.api.responses import raw_events
from ledger.api.routing import LedgerRoute
from ledger.api.schemas import StreamEvents
from ledger.domain.events import STREAM_ID_PATTERN, StreamType

router = APIRouter(prefix="/v1/streams", tags=["streams"], route_class=LedgerRoute)


@router.get(
    "/{stream_type}/{stream_id}",
    response_model=StreamEvents,
    responses=documented(400, 401, 403, 404, 422, 429, 503),
)
def read_stream(
    stream_type: StreamType,
    stream_id: Annotated[str, Path(pattern=STREAM_ID_PATTERN)],
    ledger: LedgerDep,
    principal: EventReader,
) -> Response:
    """Every event of one stream with its version, position and hash chain; 404 if unknown."""
    rows = ledger.stream(stream_type, stream_id)
    return raw_events("events", [r.json() for r in rows])
