"""The departments and people the read models have seen by a position: a KPI or SLA read that
names one they never saw answers 404 with what is known, not a page of zeros for a typo.

A department is known at position `cut` when the KPI catalogue names it (production, quality,
sales, procurement: the page of every department always shows them), or when the events counted
by `cut` gave it a KPI row (an SLA item sent to it, a rectification it planned) or an SLA item, or
a target or an incentive rule names it. A person is known when they have a KPI row by `cut` (as
the inspector, operator, plan owner or buyer) or a person target names them. Rows are versioned
by the position of the event that wrote them, so an as-of read judges by the events known then.

The checks use the read models' tables: a known name is found by the first matching row; only an
unknown one (the 404) reads the tables through to list the known departments.
"""

from __future__ import annotations

from collections.abc import Callable

from ledger.application import Ledger
from ledger.domain.errors import LedgerError
from ledger.readmodels.casefile import facts_of_streams_with
from ledger.readmodels.kpis.report import DEPARTMENT_KPIS, Plans
from ledger.readmodels.views import Views

PLAN_TYPES = ("target.set", "policy.set", "revenue.recorded")

SEEN_IN = ("rm_sla_items", "rm_kpi_rows")  # the smaller table first
MAX_LISTED = 50  # departments named in a 404; more are counted


class UnknownNameError(LedgerError):
    """A read names a department or person that no event counted by then mentions (404)."""


def catalogue() -> frozenset[str]:
    """The departments the KPI definitions name."""
    return frozenset(DEPARTMENT_KPIS)


def plans_at(ledger: Ledger, cut: int) -> Plans:
    """What the plan streams say as of position `cut`: targets, revenue and the policy."""
    return Plans(facts_of_streams_with(ledger, PLAN_TYPES, cut))


def plan_departments(plans: Plans) -> set[str]:
    targets = {department for _, department, _, _, _ in plans.targets if department}
    return targets | {str(r["department"]) for r in plans.policy.incentives}


def _exists(views: Views, column: str, value: str, cut: int) -> bool:
    with views.transaction(commit=False) as cursor:
        for table in SEEN_IN if column == "department" else ("rm_kpi_rows",):
            found = views.select(
                cursor,
                views.sql(
                    f"SELECT 1 FROM {{{table}}} WHERE {column} = ? AND valid_from <= ? LIMIT 1"
                ),
                [value, cut],
            )
            if found:
                return True
    return False


def seen_departments(views: Views, cut: int) -> set[str]:
    """Every department with a KPI row or an SLA item written by position `cut`."""
    found: set[str] = set()
    with views.transaction(commit=False) as cursor:
        for table in SEEN_IN:
            sql = views.sql(f"SELECT DISTINCT department FROM {{{table}}} WHERE valid_from <= ?")
            found |= {str(r[0]) for r in views.select(cursor, sql, [cut])}
    found.discard("")  # the enterprise's own rows (quality costs)
    return found


def check_department(views: Views, department: str, cut: int, plans: Callable[[], Plans]) -> None:
    """UnknownNameError unless `department` is known at position `cut`; `plans` gives what the
    plan streams say as of `cut` (called only when no row names the department)."""
    if department in catalogue() or _exists(views, "department", department, cut):
        return
    known = sorted(catalogue() | plan_departments(plans()) | seen_departments(views, cut))
    if department in known:
        return
    listed = ", ".join(known[:MAX_LISTED])
    more = f" and {len(known) - MAX_LISTED} more" if len(known) > MAX_LISTED else ""
    raise UnknownNameError(f"no department {department!r} in the ledger; known: {listed}{more}")


def check_person(views: Views, person: str, cut: int, plans: Plans) -> None:
    """UnknownNameError unless `person` has a KPI row or a person target at position `cut`."""
    targeted = {who for level, _, who, _, _ in plans.targets if level == "person"}
    if person in targeted or _exists(views, "person", person, cut):
        return
    raise UnknownNameError(
        f"no person {person!r} in the ledger's KPIs: no figure counts them (as inspector, "
        "operator, rectification plan owner or buyer) and no person target names them"
    )
