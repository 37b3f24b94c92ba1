"""Reads of the KPI read model: `GET /v1/kpis…`, live or as of a recorded time."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ledger.readmodels.casefile import facts_of_streams_with
from ledger.readmodels.facts import Fact
from ledger.readmodels.kpis.names import PLAN_TYPES, check_department, check_person
from ledger.readmodels.kpis.report import (
    ENTERPRISE_KPIS,
    ENTERPRISE_NAME,
    Period,
    Report,
    department_body,
    person_body,
)
from ledger.readmodels.kpis.view import stored_loader
from ledger.readmodels.runner import ProjectionRunner


class KpiReads:
    """KPIs of a period from the stored rows; every read is cut at `as_of` (recorded time)."""

    def __init__(self, kpis: ProjectionRunner, tz: ZoneInfo, now: datetime) -> None:
        self.kpis = kpis
        self.ledger = kpis.ledger
        self.tz = tz
        self.now = now

    def _report(self, as_of: datetime | None, person: str | None) -> tuple[Report, int]:
        cut = self.ledger.position_at(as_of)
        self.kpis.wait_to_read(cut)  # read-your-writes
        plans = facts_of_streams_with(self.ledger, PLAN_TYPES, cut)
        load = stored_loader(self.kpis.views, cut, self.tz, person, latest=as_of is None)
        return Report(load, plans, as_of or self.now, person=person), cut

    def departments(
        self, period: str, department: str | None, as_of: datetime | None
    ) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
        """The body of `GET /v1/kpis` (before sealing) and the incentive rules it applied."""
        report, cut = self._report(as_of, None)
        self._check(report, cut, department, None)
        body = department_body(report, Period.parse(period), department, cut)
        return body, report.plans.policy.incentives

    def person(
        self, person_id: str, period: str, as_of: datetime | None
    ) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
        report, cut = self._report(as_of, person_id)
        self._check(report, cut, None, person_id)
        return person_body(report, Period.parse(period), cut), report.plans.policy.incentives

    def explain(
        self,
        kpi: str,
        period: str,
        department: str | None,
        person_id: str | None,
        as_of: datetime | None,
    ) -> dict[str, Any]:
        """One KPI, its contributions per entity and every event they rest on."""
        report, cut = self._report(as_of, person_id)
        self._check(report, cut, department, person_id)
        span = Period.parse(period)
        if person_id is not None:
            blocks = report.personal(span)
        else:
            shown = report.departments(span, department)
            blocks = dict(shown["departments"])
            if department is None or department == ENTERPRISE_NAME:
                blocks = {ENTERPRISE_NAME: shown["enterprise"]} | blocks
        figures = {d: b["kpis"][kpi] for d, b in blocks.items() if kpi in b["kpis"]}
        if kpi in ENTERPRISE_KPIS:
            figures = {d: f for d, f in figures.items() if d == ENTERPRISE_NAME}
        explained = report.explain(kpi, span, None if kpi in ENTERPRISE_KPIS else department)
        ids = sorted(
            {e for c in explained["contributions"] for k in ("numerator_events",
             "denominator_events") for e in c[k]}
        )  # fmt: skip
        body: dict[str, Any] = {"period": str(span), "kpi": kpi, "department": department}
        if person_id is not None:
            body["person_id"] = person_id
        return body | {
            "kpis": figures,
            "contributions": explained["contributions"],
            "events": self._events(ids, cut),
            "position": cut,
        }

    def _check(self, report: Report, cut: int, department: str | None, person: str | None) -> None:
        """404 for a department or person the events counted by `cut` never named."""
        views = self.kpis.views
        if department is not None and department != ENTERPRISE_NAME:
            check_department(views, department, cut, lambda: report.plans)
        if person is not None:
            check_person(views, person, cut, report.plans)

    def _events(self, event_ids: list[str], cut: int) -> list[dict[str, Any]]:
        streams = sorted(
            {
                (stream["type"], stream["id"])
                for r in self.ledger.store.lookup(event_ids)
                for stream in [r.record()["stream"]]
            }
        )
        wanted = set(event_ids)
        facts = [
            Fact.from_row(r)
            for key in streams
            for r in self.ledger.stream_rows(*key)
            if r.position <= cut
        ]
        return [f.view() for f in sorted(facts, key=lambda f: f.position) if f.event_id in wanted]
