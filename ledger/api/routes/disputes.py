"""Responsibility chains and the SLA board, live or as of a recorded time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from ledger.api.auth import ProjectionReader, SlaReader
from ledger.api.deps import ProjectionsDep
from ledger.api.problems import documented
from ledger.api.responses import ORJSON
from ledger.api.routes.timelines import (
    AsOf,
    Limit,
    PageCursor,
    StreamIdPath,
    cursor_checked,
    cut_of,
)
from ledger.api.routing import LedgerRoute
from ledger.api.schemas import Responsibility, SlaBoard
from ledger.domain.events import DEPARTMENT_PATTERN
from ledger.readmodels.casefiles.query import ResponsibilityChains
from ledger.readmodels.kpis.names import check_department, plans_at
from ledger.readmodels.paging import DEFAULT_LIMIT
from ledger.readmodels.sla.query import SlaReads

router = APIRouter(prefix="/v1", tags=["disputes"], route_class=LedgerRoute)

SlaState = Literal["open", "breached", "met", "met_late"]


@router.get(
    "/complaints/{complaint_id}/responsibility",
    response_model=Responsibility,
    responses=documented(400, 401, 403, 404, 422, 429, 503),
)
def complaint_responsibility(
    complaint_id: StreamIdPath,
    projections: ProjectionsDep,
    principal: ProjectionReader,
    as_of: AsOf = None,
) -> Response:
    """Attributions, suggested causes, custody per department, holding time and breaches."""
    chains = ResponsibilityChains(projections.casefiles, projections.ledger.clock())
    return ORJSON(chains.complaint_responsibility(complaint_id, cut_of(as_of)))


@router.get(
    "/sla", response_model=SlaBoard, responses=documented(400, 401, 403, 404, 422, 429, 503)
)
def sla_board(
    projections: ProjectionsDep,
    principal: SlaReader,
    state: SlaState | None = None,
    department: Annotated[str | None, Query(pattern=DEPARTMENT_PATTERN)] = None,
    as_of: AsOf = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: PageCursor = None,
) -> Response:
    """Every notification's deadline and its state (open, breached, met or met_late), by due
    time, in pages: `next_cursor` continues the walk at the first page's position."""
    sla = SlaReads(projections.board, projections.ledger.clock())
    with cursor_checked():
        body = sla.sla_board(state, department, cut_of(as_of), limit=limit, cursor=cursor)
    if department is not None and cursor is None and not body["items"]:
        cut = body["position"]
        ledger = projections.ledger
        check_department(projections.views, department, cut, lambda: plans_at(ledger, cut))
    return ORJSON(body)
