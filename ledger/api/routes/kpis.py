"""KPIs per department and per person, their traces and their CSV export for payroll."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from ledger.api.auth import KpiReader
from ledger.api.deps import ProjectionsDep
from ledger.api.problems import documented
from ledger.api.responses import ORJSON
from ledger.api.routes.timelines import AsOf, cut_of
from ledger.api.routing import LedgerRoute
from ledger.domain.events import DEPARTMENT_PATTERN, PERIOD_PATTERN
from ledger.readmodels.kpis.query import KpiReads
from ledger.readmodels.kpis.report import KPI_NAMES, csv_text, seal


class TargetFrom(BaseModel):
    level: Literal["enterprise", "department", "person"]
    period: str
    direction: Literal["at_most", "at_least"]
    change_pct: float | None
    baseline_period: str | None
    baseline_value: float | None


class Kpi(BaseModel):
    """Figures are exact decimals written as JSON numbers (6 decimal places at most)."""

    value: float | None
    numerator: float | None
    denominator: float | None
    target: float | None
    met: bool | None
    target_from: TargetFrom | None
    by_currency: dict[str, dict[str, float]] | None = None


class DepartmentKpis(BaseModel):
    kpis: dict[str, Kpi]
    incentives: dict[str, float]


class EnterpriseKpis(BaseModel):
    kpis: dict[str, Kpi]


class KpiReport(BaseModel):
    period: str
    departments: dict[str, DepartmentKpis]
    enterprise: EnterpriseKpis
    position: int
    fingerprint: str


class PersonDepartment(BaseModel):
    kpis: dict[str, Kpi]


class PersonKpis(BaseModel):
    period: str
    person_id: str
    departments: dict[str, PersonDepartment]
    position: int
    fingerprint: str


class Contribution(BaseModel):
    department: str
    entity: str
    numerator: float | None
    denominator: float | None
    numerator_events: list[UUID]
    denominator_events: list[UUID]


class KpiExplanation(BaseModel):
    period: str
    kpi: str
    department: str | None
    person_id: str | None = None
    kpis: dict[str, Kpi]
    contributions: list[Contribution]
    events: list[dict[str, Any]]
    position: int
    fingerprint: str


router = APIRouter(prefix="/v1", tags=["kpis"], route_class=LedgerRoute)

PeriodQuery = Annotated[
    str, Query(pattern=PERIOD_PATTERN, description="`YYYY`, `YYYY-Qn` or `YYYY-MM`")
]
KpiName = Literal[KPI_NAMES]  # type: ignore[valid-type]
Explain = Annotated[
    KpiName | None,
    Query(description="a KPI: return the contributions and events behind its figures"),
]
Format = Annotated[Literal["json", "csv"], Query(description="`csv` for payroll")]
ActorId = Annotated[str, Path(min_length=1, max_length=200)]
DepartmentQuery = Annotated[str | None, Query(pattern=DEPARTMENT_PATTERN)]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


def read_kpis(request: Request, projections: ProjectionsDep) -> KpiReads:
    tz = ZoneInfo(request.app.state.settings.timezone)
    return KpiReads(projections.kpis, tz, projections.ledger.clock())


KpiReadsDep = Annotated[KpiReads, Depends(read_kpis)]


def _respond(body: dict[str, Any], rules: Any, fmt: str) -> Response:
    sealed = seal(body)
    if fmt == "csv":
        headers = {
            "X-Ledger-Position": str(body["position"]),
            "X-Ledger-Fingerprint": sealed["fingerprint"],
        }
        return Response(csv_text(body, rules), media_type="text/csv", headers=headers)
    return ORJSON(sealed)


@router.get(
    "/kpis",
    response_model=KpiReport | KpiExplanation,
    responses=documented(400, 401, 403, 404, 422, 429, 503) | CSV_RESPONSE,
)
def department_kpis(
    reads: KpiReadsDep,
    principal: KpiReader,
    period: PeriodQuery,
    department: DepartmentQuery = None,
    explain: Explain = None,
    format: Format = "json",
    as_of: AsOf = None,
) -> Response:
    """Each department's KPIs for the period, with targets, incentives and enterprise costs."""
    if explain is not None:
        return ORJSON(seal(reads.explain(explain, period, department, None, cut_of(as_of))))
    body, rules = reads.departments(period, department, cut_of(as_of))
    return _respond(body, rules, format)


@router.get(
    "/kpis/people/{actor_id}",
    response_model=PersonKpis | KpiExplanation,
    responses=documented(400, 401, 403, 404, 422, 429, 503) | CSV_RESPONSE,
)
def person_kpis(
    actor_id: ActorId,
    reads: KpiReadsDep,
    principal: KpiReader,
    period: PeriodQuery,
    explain: Explain = None,
    format: Format = "json",
    as_of: AsOf = None,
) -> Response:
    """A person's KPIs for the period: operators, inspectors, plan owners, buyers."""
    if explain is not None:
        return ORJSON(seal(reads.explain(explain, period, None, actor_id, cut_of(as_of))))
    body, rules = reads.person(actor_id, period, cut_of(as_of))
    return _respond(body, rules, format)
