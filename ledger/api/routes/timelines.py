"""Dispute timelines of a complaint or a batch, live or as of a recorded time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from ledger.api.auth import ProjectionReader
from ledger.api.deps import ProjectionsDep
from ledger.api.problems import documented
from ledger.api.responses import ORJSON
from ledger.api.routing import LedgerRoute
from ledger.api.schemas import Timeline
from ledger.domain.events import STREAM_ID_PATTERN, Timestamp
from ledger.domain.time import parse_time
from ledger.readmodels.casefiles.query import TimelinePages
from ledger.readmodels.paging import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT, CursorError

router = APIRouter(prefix="/v1", tags=["timelines"], route_class=LedgerRoute)

AsOf = Annotated[
    Timestamp | None,
    Query(description="RFC 3339: count only events recorded at or before this time"),
]
StreamIdPath = Annotated[str, Path(pattern=STREAM_ID_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many per page")]
PageCursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="the `next_cursor` of the page before: the walk goes on at its position",
    ),
]


def cut_of(as_of: str | None) -> datetime | None:
    return parse_time(as_of) if as_of is not None else None


@contextmanager
def cursor_checked() -> Iterator[None]:
    """A cursor that is malformed or of another query is the request's error, naming it."""
    try:
        yield
    except CursorError as e:
        error = {"type": "value_error", "loc": ("query", "cursor"), "msg": str(e), "input": None}
        raise RequestValidationError([error]) from e


@router.get(
    "/complaints/{complaint_id}/timeline",
    response_model=Timeline,
    responses=documented(400, 401, 403, 404, 422, 429, 503),
)
def complaint_timeline(
    complaint_id: StreamIdPath,
    projections: ProjectionsDep,
    principal: ProjectionReader,
    as_of: AsOf = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> Response:
    """The complaint's events and those of the batches it names and their material lots, in
    pages: the first holds the complaint's own events and a summary of each batch."""
    with cursor_checked():
        body = TimelinePages(projections.casefiles).complaint_timeline(
            complaint_id, cut_of(as_of), limit=limit, cursor=cursor
        )
    return ORJSON(body)


@router.get(
    "/batches/{batch_id}/timeline",
    response_model=Timeline,
    responses=documented(400, 401, 403, 404, 422, 429, 503),
)
def batch_timeline(
    batch_id: StreamIdPath,
    projections: ProjectionsDep,
    principal: ProjectionReader,
    as_of: AsOf = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> Response:
    """A batch's events and those of its material lots, in pages."""
    with cursor_checked():
        pages = TimelinePages(projections.casefiles)
        body = pages.batch_timeline(batch_id, cut_of(as_of), limit=limit, cursor=cursor)
    return ORJSON(body)
