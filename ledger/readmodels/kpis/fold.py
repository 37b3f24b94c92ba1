"""A stream's KPI rows folded forward one event at a time: what the live path does instead of
recomputing the stream.

`Folded` is the little a stream's next rows depend on besides the event itself: how a batch
counts (production, material lot, or not registered yet), whether its latest attribution leaves
it out of defect_rate_adjusted, the filings of the complaints that name it, the corrections of
its events, and per entity that gathers many rows (a batch's final inspections, a lot's tests,
a batch's shipments) what the sums need of them. `fold` gives the rows an event adds, changes
or removes from that state and the stored rows it asks for, or None when the event needs its
whole stream (a registration, a correction of an event whose rows are not its own alone, a
second look at a complaint, SLA items and rectifications); the caller then recomputes the
stream with `stream_rows` and
takes the state again with `derive`. Both end in the same rows, which the tests check against
`stream_rows` for random histories. Pure: no ledger, no database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from ledger.domain.time import format_time, parse_time
from ledger.readmodels.facts import Fact, effective_data
from ledger.readmodels.kpis.evolve import (
    ALL_OF,
    CASE_KPIS,
    ONE,
    PRODUCTION,
    SHIPPED_CUSTOMERS,
    Row,
    batch_context,
    case_rows,
    corrections,
    cost_rows,
    lot_rows,
    number,
    production_event_rows,
    with_corrections,
)
from ledger.readmodels.kpis.report import fraction
from ledger.readmodels.kpis.sums import Exact, Sum, SumKey, exact, parse, path_of
from ledger.readmodels.sla.evolve import FULFILLED_BY, PolicyHistory

# Events whose rows (or whose effect on other rows) depend on other events of their stream.
NEEDS_STREAM = frozenset(
    {
        "batch.registered", "event.corrected", "cause.attributed", "complaint.filed",
        "notification.sent", "rectification.planned", "rectification.completed",
        "verification.recorded", *FULFILLED_BY.values(),
    }
)  # fmt: skip
# A batch's events that its rows of CASE_KPIS depend on (with the corrections of them): one of
# them takes those rows again from these events of the batch alone (`case_rows`).
CASE_TYPES = frozenset({"notification.sent", *FULFILLED_BY.values()})
# Events whose correction changes only the corrected event's own rows (folded, in a registered
# batch or lot); a correction of any other event recomputes its stream.
OWN_ROWS = frozenset(
    {"inspection.recorded", "process.recorded", "shipment.recorded", "material.tested",
     "quality_cost.recorded"}
)  # fmt: skip
# The KPIs of the rows one event of OWN_ROWS can have, keyed "{kpi}|{event id}".
OWN_ROW_KPIS = (
    "defect_rate", "defect_rate_adjusted", "inspection_miss_rate", "process_compliance_rate",
    "complaint_rate", SHIPPED_CUSTOMERS, "quality_cost", "material_reject_rate",
)  # fmt: skip
# KPIs whose entity gathers rows of many events of a stream: `Folded.groups` keeps them.
GROUPED = frozenset({"inspection_miss_rate", "material_reject_rate", "complaint_rate"})
GroupKey = tuple[str, str, str]  # (kpi, department, entity)
STATE_VERSION = 4  # of what `Folded.to_json` writes; a state of another is taken again


@dataclass(frozen=True)
class Group:
    """What an entity's rows add to the sums (`sums.contribution` of them alone): how many,
    the buckets holding them all, the combined numerator and denominator, per person too."""

    count: int
    levels: tuple[str, ...]
    num: Exact
    den: Exact
    persons: tuple[tuple[str, Exact, Exact], ...] = ()


def grown(group: Group | None, row: Row) -> Group:
    """`group` with one more row."""
    path = path_of(row.at) if row.pending_until is None else ()
    num, den = fraction(row.num), fraction(row.den)
    persons: tuple[tuple[str, Exact, Exact], ...] = ((row.person, num, den),) if row.person else ()
    if group is None:
        return Group(1, path, num, den, persons)
    common = 0
    while common < min(len(path), len(group.levels)) and path[common] == group.levels[common]:
        common += 1
    pick = min if row.kpi in ALL_OF else max
    persons = group.persons
    if row.person:
        found = [p for p in persons if p[0] == row.person]
        if found:
            _, pnum, pden = found[0]
            mine = (row.person, pick(pnum, num), max(pden, den))
            persons = tuple(mine if p[0] == row.person else p for p in persons)
        else:
            persons = (*persons, (row.person, num, den))
    return Group(
        group.count + 1, group.levels[:common], pick(group.num, num), max(group.den, den), persons
    )


def group_sums(key: GroupKey, group: Group | None) -> dict[SumKey, Sum]:
    """What the entity's rows add to each bucket's sums."""
    if group is None:
        return {}
    kpi, department, _ = key
    parts = [("", group.num, group.den), *group.persons]
    return {
        (bucket, person, kpi, department, ""): (exact(num), exact(den), 1)
        for bucket in group.levels
        for person, num, den in parts
    }


def depth_in(group: Group, row: Row) -> int | None:
    """The depth a row of the entity is stored loose with, or None if it is not loose."""
    if group.count == 1 and group.levels:
        return None
    if len(group.levels) < len(path_of(row.at)) or row.pending_until is not None:
        return len(group.levels)
    return None


def group_key(row: Row) -> GroupKey:
    return row.kpi, row.department, row.entity


@dataclass(frozen=True)
class Folded:
    """What a stream's next rows depend on besides the event itself."""

    kind: str | None = None  # "production" or "material" once a batch is registered
    buyer: str = ""  # who registered a material lot
    left_out: bool = False  # the latest attribution leaves the batch out of the adjusted rate
    filings: tuple[tuple[str, str], ...] = ()  # (occurred_at, event id) of naming filings
    fixes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the corrections of those filings
    complaints: tuple[str, ...] = ()  # the complaints naming the batch
    groups: tuple[tuple[GroupKey, Group], ...] = ()
    corrected: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the stream's events' corrections

    def to_json(self) -> str:
        groups = [
            [list(k), g.count, list(g.levels), str(g.num), str(g.den),
             [[p, str(n), str(d)] for p, n, d in g.persons]]
            for k, g in self.groups
        ]  # fmt: skip
        body = [STATE_VERSION, self.kind, self.buyer, self.left_out, self.filings, self.fixes,
                groups, self.complaints, self.corrected]  # fmt: skip
        return orjson.dumps(body).decode()

    @classmethod
    def from_json(cls, text: str) -> Folded | None:
        """The state `to_json` wrote, or None if an older version of it wrote another shape."""
        body = orjson.loads(text)
        if body[0] != STATE_VERSION:
            return None
        _, kind, buyer, left_out, filings, fixes, groups, complaints, corrected = body
        return cls(
            corrected=tuple((e, tuple(c)) for e, c in corrected),
            kind=kind,
            buyer=buyer,
            left_out=left_out,
            filings=tuple((w, c) for w, c in filings),
            fixes=tuple((c, tuple(f)) for c, f in fixes),
            complaints=tuple(complaints),
            groups=tuple(
                (
                    (k[0], k[1], k[2]),
                    Group(
                        count,
                        tuple(levels),
                        parse(num),
                        parse(den),
                        tuple((p, parse(n), parse(d)) for p, n, d in persons),
                    ),
                )
                for k, count, levels, num, den, persons in groups
            ),
        )

    def group(self, key: GroupKey) -> Group | None:
        return dict(self.groups).get(key)


def derive(facts: list[Fact], context: list[Fact], rows: list[Row]) -> Folded:
    """The state of a stream whose counted events are `facts` (its `context` and rows as
    `stream_rows` takes and gives them)."""
    groups: dict[GroupKey, Group] = {}
    for r in rows:
        if r.kpi in GROUPED:
            groups[group_key(r)] = grown(groups.get(group_key(r)), r)
    ordered = sorted(facts, key=lambda f: f.position)
    corrected = corrections(ordered)
    state = Folded(groups=tuple(groups.items()), corrected=tuple(sorted(corrected.items())))
    if not facts or facts[0].stream[0] != "batch":
        return state
    data = effective_data(ordered)
    registered = next((f for f in ordered if f.type == "batch.registered"), None)
    if registered is None:
        return state
    if data[registered.event_id]["kind"] == "material":
        return replace(state, kind="material", buyer=str(registered.record["actor"]["id"]))
    left_out, filings = batch_context(ordered, data, ordered[0].stream[1], context)
    fixes = corrections([*ordered, *context])
    return replace(
        state,
        kind="production",
        left_out=left_out,
        filings=tuple((format_time(w), c) for w, c in filings),
        fixes=tuple((c, fixes[c]) for _, c in filings if c in fixes),
        complaints=tuple(
            dict.fromkeys(f.stream[1] for f in context if f.event_id in {c for _, c in filings})
        ),
    )


@dataclass(frozen=True)
class Step:
    """What one event does to a stream's rows: the state after it, the rows it adds or
    changes, and the keys of those it removes."""

    state: Folded
    rows: list[Row]
    removed: tuple[str, ...] = ()
    retaken: tuple[str, ...] = ()  # KPIs whose rows `rows` replace, all of them


def in_case(fact: Fact, targets: Mapping[str, Fact]) -> bool:
    """Whether `fact` is one of the events CASE_TYPES names, or a correction of one."""
    if fact.type == "event.corrected":
        target = targets.get(fact.record["data"]["corrects_event_id"])
        return target is not None and target.type in CASE_TYPES
    return fact.type in CASE_TYPES


def foldable(
    state: Folded | None,
    fact: Fact | None,
    unit: tuple[str, str],
    targets: Mapping[str, Fact] | None = None,
) -> bool:
    """Whether `fold` gives what `fact` does to the rows of stream `unit` (which it touches);
    `targets` holds the events that the page's corrections correct."""
    if state is None or fact is None:
        return False
    if unit[0] == "batch" and fact.stream == unit and in_case(fact, targets or {}):
        return True
    if fact.type == "event.corrected":
        target = (targets or {}).get(fact.record["data"]["corrects_event_id"])
        return (
            fact.stream == unit
            and state.kind is not None
            and target is not None
            and target.stream == unit
            and target.type in OWN_ROWS
        )
    if fact.type == "cause.attributed" and unit[0] == "batch":
        return fact.stream == unit or fact.stream[0] == "complaint"
    if fact.type == "complaint.filed" and unit[0] == "batch" and fact.stream[0] == "complaint":
        return fact.stream[1] not in state.complaints  # a new complaint, not a second filing
    return fact.stream == unit and fact.type not in NEEDS_STREAM


def fold(
    state: Folded,
    fact: Fact,
    unit: tuple[str, str],
    current: Callable[[str], Row | None],
    of_kpi: Callable[[str], list[Row]],
    targets: Mapping[str, Fact] | None = None,
    *,
    case: list[Fact] | None = None,
    policies: PolicyHistory | None = None,
    trusted: frozenset[str] = frozenset(),
) -> Step | None:
    """What `fact` does to the rows of stream `unit`, or None if that takes the whole stream.
    `current(key)` is the stream's row of that key in force before `fact`, `of_kpi(kpi)` its
    rows of that KPI, `targets` the events the page's corrections correct; for an event of a
    batch's case, `case` is the case up to it, with the `policies` and `trusted` sources."""
    if not foldable(state, fact, unit, targets):
        return None
    if unit[0] == "batch" and in_case(fact, targets or {}):
        if case is None:
            return None
        rows = case_rows(case, policies or PolicyHistory([]), trusted)
        return Step(state, rows, retaken=CASE_KPIS)
    if fact.type == "cause.attributed":
        return _attributed(state, fact, unit, of_kpi)
    if fact.type == "complaint.filed":
        return _filed(state, fact, unit, of_kpi)
    if fact.type == "event.corrected":
        assert targets is not None
        return _corrected(state, fact, targets[fact.record["data"]["corrects_event_id"]],
                          current, of_kpi)  # fmt: skip
    return _added(state, fact, unit, current)


def _added(
    state: Folded, fact: Fact, unit: tuple[str, str], current: Callable[[str], Row | None]
) -> Step:
    """An event that adds rows of its own (a rework also changes its batch's rework_rate)."""
    d = fact.record["data"]
    rows = _event_rows(state, fact, d)
    if state.kind == "production" and fact.type == "rework.recorded":
        rows.append(_reworked(current(f"rework_rate|{unit[1]}"), fact, d))
    if state.fixes:
        fixes = dict(state.fixes)
        rows = [with_corrections(r, fixes) for r in rows]
    grouped = [r for r in rows if r.kpi in GROUPED]
    if grouped:
        groups = dict(state.groups)
        for r in grouped:
            groups[group_key(r)] = grown(groups.get(group_key(r)), r)
        state = replace(state, groups=tuple(groups.items()))
    return Step(state, rows)


def _attributed(
    state: Folded, fact: Fact, unit: tuple[str, str], of_kpi: Callable[[str], list[Row]]
) -> Step:
    """An attribution on a production batch, or on a complaint naming it, is its latest: it
    puts every inspection of the batch in defect_rate_adjusted or leaves them all out."""
    named = fact.stream == unit or fact.stream[1] in state.complaints
    if not named or state.kind != "production":
        return Step(state, [])
    d = fact.record["data"]
    left_out = not d["controllable"] or d["responsible_department"] != PRODUCTION
    if left_out == state.left_out:
        return Step(state, [])
    state = replace(state, left_out=left_out)
    if left_out:
        return Step(state, [], tuple(r.key for r in of_kpi("defect_rate_adjusted")))
    adjusted = [
        replace(r, key=f"defect_rate_adjusted|{r.key.split('|', 1)[1]}", kpi="defect_rate_adjusted")
        for r in of_kpi("defect_rate")
    ]
    return Step(state, adjusted)


def _filed(
    state: Folded, fact: Fact, unit: tuple[str, str], of_kpi: Callable[[str], list[Row]]
) -> Step:
    """A new complaint whose filing names a production batch: the batch's final inspections
    that passed before the filing become misses resting on it too. Nothing else of the batch
    depends on the filing (a new complaint holds no attribution or correction yet)."""
    if state.kind != "production" or unit[1] not in fact.record["data"].get("batch_ids", []):
        return Step(state, [])
    filings = (*state.filings, (format_time(fact.occurred_at), fact.event_id))
    state = replace(state, filings=filings, complaints=(*state.complaints, fact.stream[1]))
    fixes = dict(state.fixes)
    misses = of_kpi("inspection_miss_rate")
    changed = []
    for row in misses:
        at = parse_time(row.at)
        if fact.occurred_at <= at:
            continue  # inspected after the filing: not a miss of it
        later = [c for when, c in filings if parse_time(when) > at]
        resting = (e for c in later for e in (c, *fixes.get(c, ())))
        changed.append(
            replace(row, num=ONE, num_refs=tuple(dict.fromkeys((*row.den_refs, *resting))))
        )
    return Step(_regrouped(state, of_kpi, changed, ()), changed)


def _corrected(
    state: Folded,
    fact: Fact,
    target: Fact,
    current: Callable[[str], Row | None],
    of_kpi: Callable[[str], list[Row]],
) -> Step:
    """A correction of an event of OWN_ROWS: that event's rows again, from the corrected data
    (the last correction's), resting on every correction of it."""
    eid = target.event_id
    corrected = dict(state.corrected)
    corrected[eid] = (*corrected.get(eid, ()), fact.event_id)
    state = replace(state, corrected=tuple(sorted(corrected.items())))
    fixes = {**dict(state.fixes), eid: corrected[eid]}
    new = {
        r.key: r
        for r in (
            with_corrections(r, fixes)
            for r in _event_rows(state, target, fact.record["data"]["data"])
        )
    }
    old = {k: r for k in (f"{kpi}|{eid}" for kpi in OWN_ROW_KPIS) if (r := current(k)) is not None}
    changed = [r for k, r in new.items() if old.get(k) != r]
    removed = tuple(k for k in old if k not in new)
    return Step(_regrouped(state, of_kpi, changed, [old[k] for k in removed]), changed, removed)


def _event_rows(state: Folded, fact: Fact, d: dict[str, Any]) -> list[Row]:
    """The rows of one event with data `d` of a stream in `state` (not a rework's change of
    its batch's rework_rate row)."""
    stream_type, stream_id = fact.stream
    rows = list(cost_rows([fact], {fact.event_id: d}))
    if stream_type == "batch" and state.kind == "material":
        rows += lot_rows([fact], {fact.event_id: d}, stream_id, state.buyer)
    elif stream_type == "batch" and state.kind == "production":
        filings = [(parse_time(w), c) for w, c in state.filings]
        rows += production_event_rows(fact, d, stream_id, state.left_out, filings)
    return rows


def _regrouped(
    state: Folded,
    of_kpi: Callable[[str], list[Row]],
    changed: Sequence[Row],
    removed: Sequence[Row],
) -> Folded:
    """`state` with each entity of GROUPED that these rows change or leave taken again from
    its rows in force once they are changed or removed (none left: no entity)."""
    entities = {group_key(r) for r in (*changed, *removed) if r.kpi in GROUPED}
    groups = dict(state.groups)
    for entity in sorted(entities):
        rows = {r.key: r for r in of_kpi(entity[0]) if group_key(r) == entity}
        rows |= {r.key: r for r in changed if group_key(r) == entity}
        for r in removed:
            rows.pop(r.key, None)
        group: Group | None = None
        for row in sorted(rows.values(), key=lambda r: (r.at, r.key)):
            group = grown(group, row)
        if group is None:
            groups.pop(entity, None)
        else:
            groups[entity] = group
    return replace(state, groups=tuple(groups.items()))


def _reworked(row: Row | None, fact: Fact, d: dict[str, Any]) -> Row:
    """A production batch's rework_rate row with one more rework."""
    if row is None:  # a production batch has one from its registration on
        raise LookupError(f"no rework_rate row of {fact.stream[1]}")
    eid = fact.event_id
    return replace(
        row,
        num=row.num + number(d["units"]),
        num_refs=(*row.num_refs, eid),
        den_refs=(*row.den_refs, eid),
    )
