"""KPIs of SPEC §7.4 with their targets (§6 `target.set`) and incentives (§8): pure functions.

`Report` turns what falls in a period into figures: the rows of `kpis.evolve`, and sums of whole
entities' contributions added up in advance (`kpis.sums`). Where they come from is its caller's
choice: `kpis()` computes the rows from the raw events and pre-adds nothing, the read model
(`kpis.view`) selects its stored sums and the rows it could not pre-add; both go through
`Figures`, so they cannot disagree.

Figures are exact (fractions of Decimals) until shown: every number of a response is a JSON
number written from a Decimal, rounded half-even to 6 decimal places, trailing zeros dropped.
A KPI's `met` is decided on the exact figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from ledger.domain.time import format_time
from ledger.readmodels.facts import Fact, effective_data, sealed
from ledger.readmodels.kpis.evolve import (
    ALL_OF,
    ENTERPRISE,
    SALES,
    SHIPPED_CUSTOMERS,
    Row,
    ledger_rows,
    number,
)
from ledger.readmodels.sla.evolve import PolicyHistory

DEPARTMENT_KPIS: dict[str, tuple[str, ...]] = {
    "procurement": ("material_reject_rate",),
    "production": (
        "defect_rate",
        "defect_rate_adjusted",
        "rework_rate",
        "process_compliance_rate",
    ),
    "quality": ("inspection_miss_rate",),
    "sales": ("complaint_handling_timeliness", "complaint_rate", "repurchase_rate"),
}
EVERY_DEPARTMENT = ("rectification_completion_rate", "sla_on_time_rate", "penalty_points")
PERSONAL = (
    "material_reject_rate",
    "process_compliance_rate",
    "inspection_miss_rate",
    "rectification_completion_rate",
)
ENTERPRISE_KPIS = ("quality_cost", "quality_cost_ratio")
KPI_NAMES = tuple(
    sorted(
        {k for ks in DEPARTMENT_KPIS.values() for k in ks} | {*EVERY_DEPARTMENT, *ENTERPRISE_KPIS}
    )
)
SUMS = frozenset({"penalty_points", "quality_cost"})  # shown as a total, without a denominator
ENTERPRISE_NAME = "enterprise"  # how enterprise-wide figures are named in responses
SHOWN = Decimal("0.000001")


@dataclass(frozen=True)
class Period:
    """`YYYY`, `YYYY-Qn` or `YYYY-MM`: a span of whole months."""

    year: int
    first: int  # first month, 1..12
    months: int  # 12, 3 or 1

    @classmethod
    def parse(cls, text: str) -> Period:
        year, _, rest = text.partition("-")
        if not rest:
            return cls(int(year), 1, 12)
        if rest.startswith("Q"):
            return cls(int(year), 3 * int(rest[1:]) - 2, 3)
        return cls(int(year), int(rest), 1)

    def __str__(self) -> str:
        if self.months == 12:
            return f"{self.year:04d}"
        if self.months == 3:
            return f"{self.year:04d}-Q{(self.first + 2) // 3}"
        return f"{self.year:04d}-{self.first:02d}"

    def window(self, tz: ZoneInfo) -> tuple[str, str]:
        """[start, end) in UTC, as `format_time` writes times: the period's months in `tz`."""
        end_month = self.first + self.months
        end_year = self.year + (end_month - 1) // 12
        try:
            start = format_time(datetime(self.year, self.first, 1, tzinfo=tz))
        except (ValueError, OverflowError):  # year 0 or 1: before any event
            return "", ""
        try:
            end = format_time(datetime(end_year, (end_month - 1) % 12 + 1, 1, tzinfo=tz))
        except (ValueError, OverflowError):  # after 9999: past any event
            end = "~"
        return start, end

    def previous(self) -> Period:
        index = self.year * 12 + self.first - 1 - self.months
        return Period(index // 12, index % 12 + 1, self.months)

    def enclosing(self) -> list[Period]:
        """The period itself, then its quarter and year: where a target for it may be set."""
        found = [self]
        if self.months == 1:
            found.append(Period(self.year, (self.first - 1) // 3 * 3 + 1, 3))
        if self.months < 12:
            found.append(Period(self.year, 1, 12))
        return found

    def parts(self) -> list[Period]:
        if self.months == 12:
            return [Period(self.year, m, 3) for m in (1, 4, 7, 10)]
        if self.months == 3:
            return [Period(self.year, self.first + i, 1) for i in range(3)]
        return []


# (kpi, department, person, label) → (numerator, denominator, entities) of pre-added entities
Sums = dict[tuple[str, str, str, str], tuple[Fraction | int, Fraction | int, int]]


@dataclass(frozen=True)
class Parts:
    """What a period holds: pre-added sums, and rows (every row of their entity in the period)."""

    sums: Sums
    rows: list[Row]


class Loader(Protocol):
    """Where a report's rows come from: the raw events, or the read model."""

    def parts(self, period: Period, kpis: tuple[str, ...] | None) -> Parts:
        """The period's sums and rows; a personal report's only the person's."""
        ...

    def rows(self, period: Period, kpis: tuple[str, ...] | None) -> list[Row]:
        """Every row of the period (for `explain`)."""
        ...


class RowsLoader:
    """Select from rows in memory as the read model selects from its table; pre-add nothing."""

    def __init__(self, rows: list[Row], tz: ZoneInfo) -> None:
        self._rows = rows
        self.tz = tz

    def rows(self, period: Period, kpis: tuple[str, ...] | None) -> list[Row]:
        start, end = period.window(self.tz)
        return [r for r in self._rows if start <= r.at < end and (kpis is None or r.kpi in kpis)]

    def parts(self, period: Period, kpis: tuple[str, ...] | None) -> Parts:
        return Parts({}, self.rows(period, kpis))


def rows_loader(rows: list[Row], tz: ZoneInfo) -> Loader:
    return RowsLoader(rows, tz)


@dataclass
class Tally:
    # exact: an int while every part is whole (int arithmetic is several times Fraction's)
    num: Fraction | int = 0
    den: Fraction | int = 0
    num_refs: list[str] = field(default_factory=list)
    den_refs: list[str] = field(default_factory=list)


def counted(rows: Iterable[Row], now: str) -> list[Row]:
    """Rows that count at `now`: an unanswered SLA item only once it is due."""
    return [r for r in rows if r.pending_until is None or now >= r.pending_until]


@lru_cache(maxsize=65536)
def fraction(value: Decimal) -> Fraction | int:
    """`value` exactly: an int when whole, else a Fraction; remembered, as the same few values
    (0, 1, sample sizes) recur."""
    whole = int(value)
    return whole if whole == value else Fraction(value)


def per_entity(rows: Iterable[Row], *, by_person: bool) -> dict[tuple[str, str, str, str], Tally]:
    """(department, person, kpi, entity) → its contribution: the entity counts once."""
    found: dict[tuple[str, str, str, str], Tally] = {}
    refs: dict[tuple[str, str, str, str], tuple[dict[str, None], dict[str, None]]] = {}
    for r in rows:
        key = (r.department, r.person if by_person else "", r.kpi, r.entity)
        t = found.get(key)
        num, den = fraction(r.num), fraction(r.den)
        if t is None:
            found[key] = Tally(num, den)
            refs[key] = dict.fromkeys(r.num_refs), dict.fromkeys(r.den_refs)
            continue
        t.num = min(t.num, num) if r.kpi in ALL_OF else max(t.num, num)
        t.den = max(t.den, den)
        num_refs, den_refs = refs[key]  # in order of first mention, each once
        num_refs.update(dict.fromkeys(r.num_refs))
        den_refs.update(dict.fromkeys(r.den_refs))
    for key, (num_refs, den_refs) in refs.items():
        found[key].num_refs, found[key].den_refs = list(num_refs), list(den_refs)
    return found


def customers(parts: Parts) -> set[str]:
    """The customers shipped to in a period (`repurchase_rate`)."""
    found = {r.entity for r in parts.rows if r.kpi == SHIPPED_CUSTOMERS}
    return found | {k[3] for k, (_, _, n) in parts.sums.items() if k[0] == SHIPPED_CUSTOMERS and n}


class Figures:
    """The exact numerators and denominators of one period, per department or per person:
    the pre-added sums plus what the rows' entities combine to (an entity is in one or the
    other, whole)."""

    def __init__(self, parts: Parts, previous_customers: set[str], *, by_person: bool) -> None:
        self.sums: dict[tuple[str, str, str], Tally] = {}
        rows = parts.rows
        ordinary = [r for r in rows if r.kpi not in (SHIPPED_CUSTOMERS, "quality_cost")]
        for (dept, person, kpi, _), t in per_entity(ordinary, by_person=by_person).items():
            s = self.sums.setdefault((dept, person, kpi), Tally())
            s.num += t.num
            s.den += t.den
        self.costs: dict[str, dict[str, Fraction]] = {}
        for (kpi, dept, person, label), (num, den, n) in parts.sums.items():
            if not n or kpi == SHIPPED_CUSTOMERS:
                continue
            if kpi == "quality_cost":
                self._cost(label, num)
                continue
            s = self.sums.setdefault((dept, person if by_person else "", kpi), Tally())
            s.num += num
            s.den += den
        if not by_person:
            shipped = customers(parts)
            self.sums[(SALES, "", "repurchase_rate")] = Tally(
                Fraction(len(previous_customers & shipped)), Fraction(len(previous_customers))
            )
        for r in rows:
            if r.kpi == "quality_cost":
                self._cost(r.label, Fraction(r.num))

    def _cost(self, label: str, amount: Fraction | int) -> None:
        currency, category = label.split(" ", 1)
        by = self.costs.setdefault(currency, {})
        by[category] = by.get(category, Fraction(0)) + amount

    def departments(self) -> set[str]:
        return {d for d, _, _ in self.sums if d != ENTERPRISE}

    def get(self, department: str, person: str, kpi: str) -> Tally:
        return self.sums.get((department, person, kpi), Tally())


@dataclass(frozen=True)
class Revenue:
    amount: Decimal
    currency: str
    event_ids: tuple[str, ...]


class Plans:
    """What the plan streams say: targets, revenue and the policy in force."""

    def __init__(self, plan_facts: list[Fact]) -> None:
        ordered = sorted(plan_facts, key=lambda f: f.position)
        data = effective_data(ordered)
        self.policy = PolicyHistory(ordered).latest
        self.targets: dict[tuple[str, str, str, str, str], dict[str, Any]] = {}
        self.revenue: dict[str, list[tuple[Decimal, str, str]]] = {}
        for f in ordered:
            d = data[f.event_id]
            if f.type == "target.set":
                level = d["level"]
                department = (d.get("department") or "") if level != "enterprise" else ""
                person = (d.get("person_id") or "") if level == "person" else ""
                # the latest recorded wins
                self.targets[(level, department, person, d["kpi"], d["period"])] = d
            elif f.type == "revenue.recorded":
                self.revenue[d["period"]] = [(number(d["amount"]), d["currency"], f.event_id)]

    def target(
        self, kpi: str, department: str, person: str, period: Period
    ) -> tuple[dict[str, Any], str, Period] | None:
        """The target in force: the person's own, else the department's, else the enterprise's;
        at each level the one set for the period itself, else its quarter, else its year."""
        levels = [("person", department, person)] if person else []
        if department != ENTERPRISE:
            levels.append(("department", department, ""))
        levels.append(("enterprise", "", ""))
        for level, dept, who in levels:
            for p in period.enclosing():
                found = self.targets.get((level, dept, who, kpi, str(p)))
                if found is not None:
                    return found, level, p
        return None

    def departments_with_targets(self, period: Period) -> set[str]:
        spans = {str(p) for p in period.enclosing()}
        return {k[1] for k in self.targets if k[0] == "department" and k[4] in spans}

    def revenue_of(self, period: Period) -> Revenue | None:
        """The revenue recorded for the period, else the sum of its quarters' or months'."""
        exact = self.revenue.get(str(period))
        if exact:
            amount, currency, event_id = exact[-1]
            return Revenue(amount, currency, (event_id,))
        parts = [r for r in (self.revenue_of(p) for p in period.parts()) if r is not None]
        if not parts or len({r.currency for r in parts}) > 1:
            return None
        return Revenue(
            sum((r.amount for r in parts), Decimal(0)),
            parts[0].currency,
            tuple(e for r in parts for e in r.event_ids),
        )


def shown(value: Fraction | Decimal | int | None) -> Decimal | None:
    """How a figure is shown: rounded half-even to 6 decimal places, no trailing zeros."""
    if value is None:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        ratio = Fraction(value)
        exact = Decimal(ratio.numerator) / Decimal(ratio.denominator)
        rounded = exact.quantize(SHOWN, rounding=ROUND_HALF_EVEN).normalize()
    return rounded if rounded else Decimal(0)


class Report:
    """Figures, targets and incentives of periods, from rows selected by `load`."""

    def __init__(
        self,
        load: Loader,
        plan_facts: list[Fact],
        now: datetime,
        *,
        person: str | None = None,
    ) -> None:
        self.load = load
        self.plans = Plans(plan_facts)
        self.now = format_time(now)
        self.person = person
        self._figures: dict[Period, Figures] = {}

    def figures(self, period: Period) -> Figures:
        if period not in self._figures:
            parts = self.load.parts(period, None)
            rows = counted(parts.rows, self.now)
            previous: set[str] = set()
            if self.person is None:
                previous = customers(self.load.parts(period.previous(), (SHIPPED_CUSTOMERS,)))
            self._figures[period] = Figures(
                Parts(parts.sums, rows), previous, by_person=self.person is not None
            )
        return self._figures[period]

    def exact(self, kpi: str, department: str, period: Period) -> tuple[Any, Any, Any]:
        """(value, numerator, denominator) exactly; a sum has no denominator."""
        figures = self.figures(period)
        if kpi == "quality_cost":
            costs = figures.costs
            if len(costs) > 1:
                return None, None, None
            whole = sum((sum(c.values(), Fraction(0)) for c in costs.values()), Fraction(0))
            return whole, whole, None
        if kpi == "quality_cost_ratio":
            revenue = self.plans.revenue_of(period)
            costs = figures.costs
            if revenue is None or any(c != revenue.currency for c in costs):
                return None, None, Fraction(revenue.amount) if revenue else None
            cost = sum(costs.get(revenue.currency, {}).values(), Fraction(0))
            den = Fraction(revenue.amount)
            return (cost / den if den else None), cost, den
        t = figures.get(department, self.person or "", kpi)
        if kpi in SUMS:
            return t.num, t.num, None
        return (Fraction(t.num) / t.den if t.den else None), t.num, t.den

    def kpi(self, kpi: str, department: str, period: Period) -> dict[str, Any]:
        """One KPI as SPEC §7.4 shows it, with where its target came from."""
        value, num, den = self.exact(kpi, department, period)
        body: dict[str, Any] = {
            "value": shown(value),
            "numerator": shown(num),
            "denominator": shown(den),
            "target": None,
            "met": None,
            "target_from": None,
        }
        found = self.plans.target(kpi, department, self.person or "", period)
        if found is not None:
            data, level, set_for = found
            target, baseline = self._resolve(data, kpi, department)
            body["target"] = shown(target)
            if value is not None and target is not None:
                body["met"] = value <= target if data["direction"] == "at_most" else value >= target
            body["target_from"] = {
                "level": level,
                "period": str(set_for),
                "direction": data["direction"],
                "change_pct": shown(number(data["change_pct"]))
                if data.get("change_pct") is not None
                else None,
                "baseline_period": data.get("baseline_period"),
                "baseline_value": shown(baseline),
            }
        if kpi == "quality_cost":
            body["by_currency"] = {
                currency: {k: shown(v) for k, v in sorted(by.items())}
                for currency, by in sorted(self.figures(period).costs.items())
            }
        return body

    def _resolve(
        self, data: dict[str, Any], kpi: str, department: str
    ) -> tuple[Fraction | None, Fraction | None]:
        """(target, baseline value): a relative target is the baseline × (1 + change_pct/100),
        the baseline being this department's (or person's) own value in the baseline period."""
        if data.get("target") is not None:
            return Fraction(number(data["target"])), None
        baseline, _, _ = self.exact(kpi, department, Period.parse(data["baseline_period"]))
        if baseline is None:
            return None, None
        return baseline * (1 + Fraction(number(data["change_pct"])) / 100), baseline

    def incentives(self, department: str, kpis: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The outcomes of the policy's incentive rules for the department's met or missed KPIs."""
        outcomes: dict[str, Any] = {}
        for rule in self.plans.policy.incentives:
            met = kpis.get(rule["kpi"], {}).get("met")
            if rule["department"] == department and met is not None:
                outcomes[rule["outcome"]] = shown(number(rule["met" if met else "missed"]))
        return outcomes

    def departments(self, period: Period, department: str | None) -> dict[str, Any]:
        """`{"departments": …, "enterprise": …}` of SPEC §5's `GET /v1/kpis`."""
        names = (
            set(DEPARTMENT_KPIS)
            | self.figures(period).departments()
            | self.plans.departments_with_targets(period)
            | {r["department"] for r in self.plans.policy.incentives}
        )
        if department is not None:
            names = {department}
        shown_departments = {}
        for d in sorted(names):
            kpis = {
                k: self.kpi(k, d, period) for k in DEPARTMENT_KPIS.get(d, ()) + EVERY_DEPARTMENT
            }
            shown_departments[d] = {"kpis": kpis, "incentives": self.incentives(d, kpis)}
        enterprise = {"kpis": {k: self.kpi(k, ENTERPRISE, period) for k in ENTERPRISE_KPIS}}
        return {"departments": shown_departments, "enterprise": enterprise}

    def personal(self, period: Period) -> dict[str, Any]:
        """The person's KPIs, per department they count for."""
        assert self.person is not None
        found: dict[str, set[str]] = {}
        for d, _, kpi in self.figures(period).sums:
            found.setdefault(d, set()).add(kpi)
        for (level, d, who, kpi, p), _ in self.plans.targets.items():
            spans = {str(q) for q in period.enclosing()}
            if level == "person" and who == self.person and kpi in PERSONAL and p in spans:
                found.setdefault(d, set()).add(kpi)
        return {
            d: {"kpis": {k: self.kpi(k, d, period) for k in PERSONAL if k in kpis}}
            for d, kpis in sorted(found.items())
        }

    def explain(self, kpi: str, period: Period, department: str | None) -> dict[str, Any]:
        """The contributions behind one KPI: per department and entity, with their events."""
        if kpi == "repurchase_rate":
            return self._explain_repurchase(period, department)
        rows = counted(self.load.rows(period, (kpi,)), self.now)
        contributions = []
        for (d, _, _, entity), t in sorted(per_entity(rows, by_person=False).items()):
            if department is None or d == department:
                contributions.append(_contribution(d, entity, t))
        if kpi == "quality_cost_ratio":
            revenue = self.plans.revenue_of(period)
            if revenue is not None:
                t = Tally(Fraction(0), Fraction(revenue.amount), [], list(revenue.event_ids))
                contributions.append(_contribution(ENTERPRISE, "revenue", t))
            for r in counted(self.load.rows(period, ("quality_cost",)), self.now):
                t = Tally(Fraction(r.num), Fraction(0), [r.entity], [])
                contributions.append(_contribution(ENTERPRISE, r.entity, t))
        return {"contributions": contributions}

    def _explain_repurchase(self, period: Period, department: str | None) -> dict[str, Any]:
        if department not in (None, SALES) or self.person is not None:
            return {"contributions": []}
        now_rows = self.load.rows(period, (SHIPPED_CUSTOMERS,))
        before = self.load.rows(period.previous(), (SHIPPED_CUSTOMERS,))
        contributions = []
        for customer in sorted({r.entity for r in before}):
            again = [e for r in now_rows if r.entity == customer for e in r.den_refs]
            earlier = [e for r in before if r.entity == customer for e in r.den_refs]
            t = Tally(Fraction(1 if again else 0), Fraction(1), again, earlier)
            contributions.append(_contribution(SALES, customer, t))
        return {"contributions": contributions}


def _contribution(department: str, entity: str, t: Tally) -> dict[str, Any]:
    return {
        "department": department or ENTERPRISE_NAME,
        "entity": entity,
        "numerator": shown(t.num),
        "denominator": shown(t.den),
        "numerator_events": sorted(t.num_refs),
        "denominator_events": sorted(t.den_refs),
    }


def department_body(
    report: Report, period: Period, department: str | None, position: int
) -> dict[str, Any]:
    """The body of `GET /v1/kpis` (Decimals not yet sealed)."""
    return {"period": str(period), **report.departments(period, department), "position": position}


def person_body(report: Report, period: Period, position: int) -> dict[str, Any]:
    """The body of `GET /v1/kpis/people/{actor_id}` (Decimals not yet sealed)."""
    return {
        "period": str(period),
        "person_id": report.person,
        "departments": report.personal(period),
        "position": position,
    }


def seal(body: dict[str, Any]) -> dict[str, Any]:
    """The response: exact JSON numbers and the fingerprint."""
    return sealed(jsonable(body))


def plan_facts_of(facts: list[Fact]) -> list[Fact]:
    return [f for f in facts if f.stream[0] == "plan"]


def kpis(
    facts: list[Fact],
    period: str,
    tz: ZoneInfo,
    now: datetime,
    trusted: frozenset[str],
    department: str | None = None,
) -> dict[str, Any]:
    """`GET /v1/kpis` computed straight from the counted events: the reference the read model
    must agree with."""
    position = max((f.position for f in facts), default=0)
    load = rows_loader(ledger_rows(facts, trusted), tz)
    report = Report(load, plan_facts_of(facts), now)
    return seal(department_body(report, Period.parse(period), department, position))


def person_kpis(
    facts: list[Fact],
    person_id: str,
    period: str,
    tz: ZoneInfo,
    now: datetime,
    trusted: frozenset[str],
) -> dict[str, Any]:
    """`GET /v1/kpis/people/{person_id}` computed straight from the counted events."""
    position = max((f.position for f in facts), default=0)
    rows = [r for r in ledger_rows(facts, trusted) if r.person == person_id]
    report = Report(rows_loader(rows, tz), plan_facts_of(facts), now, person=person_id)
    return seal(person_body(report, Period.parse(period), position))


def jsonable(value: Any) -> Any:
    """Decimals as exact JSON numbers (orjson fragments), never through a float."""
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f").encode())
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


CSV_COLUMNS = (
    "period", "department", "person_id", "kpi", "value", "numerator", "denominator", "target",
    "direction", "target_level", "met", "incentive", "incentive_value",
)  # fmt: skip


def csv_text(body: dict[str, Any], rules: Iterable[dict[str, Any]]) -> str:
    """A KPI body (before sealing) as CSV: one line per department (or the person's department)
    and KPI; an incentive outcome stands on the line of the KPI its rule reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    blocks = dict(body["departments"])
    if "enterprise" in body:
        blocks[ENTERPRISE_NAME] = body["enterprise"]
    reads = {(r["department"], r["kpi"]): r["outcome"] for r in rules}
    for department, block in blocks.items():
        incentives = block.get("incentives", {})
        for name, k in block["kpis"].items():
            source = k.get("target_from") or {}
            outcome = reads.get((department, name), "")
            value = incentives.get(outcome)
            writer.writerow([
                body["period"], department, body.get("person_id") or "", name,
                _cell(k["value"]), _cell(k["numerator"]), _cell(k["denominator"]),
                _cell(k["target"]), source.get("direction", ""), source.get("level", ""),
                "" if k["met"] is None else str(k["met"]).lower(),
                outcome if value is not None else "", _cell(value),
            ])  # fmt: skip
    return out.getvalue()


def _cell(value: Decimal | None) -> str:
    return "" if value is None else format(value, "f")
