"""Pre-added KPI contributions: what lets a read add a few hundred sums instead of every row.

A period is whole months in LEDGER_TIMEZONE, which the projector does not know (and which may
change). Its window [start, end) in UTC starts and ends within a day of a UTC month boundary,
for any offset. So time is cut into a tree of buckets that do not depend on the time zone:

* the core of a UTC year, 2 January to 31 December (`Y2026`); in it the cores of its quarters
  (`K2026-2`: from the quarter's 2nd day to its last day) and in those the cores of the months
  (`M2026-06`: from the 2nd day to the last day);
* the *edge* days, first and last of each month (`D2026-05-31`), inside the narrowest core
  around them, each cut into hours (`H2026-05-31T16`) and quarter hours (`S2026-05-31T16:15`).

`path_of` gives a time's buckets from the top; `tiling` covers a window exactly with the
coarsest buckets that fit (26 for any month, quarter or year in a zone whose offset is whole
hours), or says it cannot, and the read then adds up every row.

A KPI combines the rows of one *entity* (a lot, a batch, a complaint, …) before adding entities
up (`kpis.per_entity`), so only whole entities can be pre-added: an entity counts in the sums of
every bucket holding all its rows (the common prefix of their paths). A row whose entity no
bucket as small as the row's own holds whole is *loose*, stored with that common prefix's
length (its depth; 0 for an SLA item still unanswered, which counts only once due, so at read
time). A read adds the sums of its tiles, and combines itself the loose rows in each tile whose
depth is less than the tile's: those entities are in no chosen tile's sums (a chosen tile holding
the whole entity would be on the row's path, so it would be the row's tile), and all of their
rows in the window are loose there for the same reason. An entity's rows all come from one
stream, so each stream's part of the sums is its own (`contribution`); shipped customers,
which are counted as a set across streams, are counted per row instead.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ledger.readmodels.kpis.evolve import SHIPPED_CUSTOMERS, Row
from ledger.readmodels.kpis.report import per_entity

COSTS = "quality_cost"
# (bucket, person, kpi, department, label) → (numerator, denominator, entities)
SumKey = tuple[str, str, str, str, str]
Exact = Fraction | int  # exact numbers; whole ones as ints, which add faster
Sum = tuple[Exact, Exact, int]
DAY, HOUR, SLOT = timedelta(days=1), timedelta(hours=1), timedelta(minutes=15)


@dataclass(frozen=True)
class Piece:
    """One bucket of a tiling: its name, its depth in the tree and its span [start, end)."""

    bucket: str
    depth: int
    start: str
    end: str


@lru_cache(maxsize=8192)
def _day(day: str) -> tuple[str, ...]:
    """The buckets above a day (`YYYY-MM-DD`), coarsest first, and whether it is an edge day
    (then its own bucket `D…` ends the tuple)."""
    year, month, dom = int(day[:4]), int(day[5:7]), int(day[8:10])
    last = calendar.monthrange(year, month)[1]
    quarter = f"K{year:04d}-{(month - 1) // 3 + 1}"
    if (month, dom) in ((1, 1), (12, 31)):
        return (f"D{day}",)
    if (dom == 1 and month % 3 == 1) or (dom == last and month % 3 == 0):
        return (f"Y{year:04d}", f"D{day}")
    if dom in (1, last):
        return (f"Y{year:04d}", quarter, f"D{day}")
    return (f"Y{year:04d}", quarter, f"M{day[:7]}")


def path_of(at: str) -> tuple[str, ...]:
    """The buckets holding the time `at` (`format_time`), coarsest first; () if none can."""
    if len(at) != 27 or at[4] != "-" or at[10] != "T" or at[26] != "Z" or at < "1000":
        return ()
    above = _day(at[:10])
    if above[-1][0] == "M":
        return above
    slot = int(at[14:16]) // 15 * 15
    return (*above, f"H{at[:13]}", f"S{at[:14]}{slot:02d}")


def _parse(text: str) -> datetime | None:
    if len(text) != 27 or text < "1000":
        return None
    try:
        return datetime.fromisoformat(text[:-1])
    except ValueError:
        return None


def _text(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S}.000000Z"


def tiling(start: str, end: str) -> list[Piece] | None:
    """The coarsest buckets that cover the window [start, end) exactly, or None."""
    lo, hi = _parse(start), _parse(end)
    if lo is None or hi is None or lo.microsecond or hi.microsecond or hi.year >= 9999:
        return None
    found: list[Piece] = []
    pos = lo
    while pos < hi:
        above = _day(f"{pos:%Y-%m-%d}")
        y, m = pos.year, pos.month
        q = (m - 1) // 3 * 3 + 1  # the quarter's first month
        cores = (  # (bucket, start, end) of the cores that may begin at pos, coarsest first
            (f"Y{y:04d}", datetime(y, 1, 2), datetime(y, 12, 31)),
            (f"K{y:04d}-{(m - 1) // 3 + 1}", datetime(y, q, 2),
             datetime(y, q + 2, calendar.monthrange(y, q + 2)[1])),
            (f"M{y:04d}-{m:02d}", datetime(y, m, 2), datetime(y, m, calendar.monthrange(y, m)[1])),
        )  # fmt: skip
        core = next(
            ((i + 1, name, stop) for i, (name, begin, stop) in enumerate(cores)
             if pos == begin and stop <= hi),
            None,
        )  # fmt: skip
        step: timedelta | None = None
        if core is not None:
            depth, bucket, stop = core
            step = stop - pos
        elif above[-1][0] == "D" and pos.second == 0:
            depth = len(above)
            if pos.hour == 0 and pos.minute == 0 and pos + DAY <= hi:
                bucket, step = above[-1], DAY
            elif pos.minute == 0 and pos + HOUR <= hi:
                bucket, step, depth = f"H{pos:%Y-%m-%dT%H}", HOUR, depth + 1
            elif pos.minute % 15 == 0 and pos + SLOT <= hi:
                bucket, step, depth = f"S{pos:%Y-%m-%dT%H:%M}", SLOT, depth + 2
        if step is None:
            return None
        found.append(Piece(bucket, depth, _text(pos), _text(pos + step)))
        pos += step
    return found


def exact(value: Decimal | Fraction | int) -> Exact:
    """A number as an int when it is whole (cheap to add), else a Fraction."""
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= 0:
            return int(value)
    fraction = Fraction(value)
    return fraction.numerator if fraction.denominator == 1 else fraction


def parse(text: str) -> Exact:
    """A number as `str` wrote it: "3", "-3" or "7/2"."""
    if "/" in text:
        return Fraction(text)
    return int(text)


# KPIs whose rows are never loose: each row is an entity of its own (see `contribution`) and is
# never pending, so a bucket that holds the row holds its entity whole.
NEVER_LOOSE = frozenset({SHIPPED_CUSTOMERS})


def contribution(rows: list[Row]) -> tuple[dict[SumKey, Sum], dict[str, int]]:
    """What rows (one stream's) add to the sums, and the loose rows among them: key → the depth
    of the smallest bucket holding their whole entity (0: none, or an SLA item still pending).

    The sums are keyed by bucket and by person: person "" holds the department's figures
    (entities combined across people), a person's own key what their rows alone combine to.
    """
    entities: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        entity = r.key if r.kpi in (SHIPPED_CUSTOMERS, COSTS) else r.entity
        entities.setdefault((r.department, r.kpi, entity), []).append(r)
    sums: dict[SumKey, list[Any]] = {}
    loose: dict[str, int] = {}
    for (department, kpi, _), group in entities.items():
        levels = _whole_in(group)
        for r in group if len(group) > 1 or not levels else ():
            if len(levels) < len(path_of(r.at)) or r.pending_until is not None:
                loose[r.key] = len(levels)
        if not levels:
            continue
        parts = _parts(kpi, group)
        for bucket in levels:
            for person, label, num, den in parts:
                key = (bucket, person, kpi, department, label)
                s = sums.get(key)
                if s is None:
                    sums[key] = [num, den, 1]
                else:
                    s[0] += num
                    s[1] += den
                    s[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in sums.items()}, loose


def _whole_in(group: list[Row]) -> tuple[str, ...]:
    """The buckets that hold every row of an entity (none if one of them is pending)."""
    first = group[0]
    if first.pending_until is not None:
        return ()
    levels = path_of(first.at)
    for r in group[1:]:
        path = path_of(r.at) if r.pending_until is None else ()
        if path != levels:
            common = 0
            while common < min(len(path), len(levels)) and path[common] == levels[common]:
                common += 1
            levels = levels[:common]
    return levels


def _parts(kpi: str, group: list[Row]) -> list[tuple[str, str, Exact, Exact]]:
    """What an entity's rows add to each of its buckets: (person, label, num, den)."""
    first = group[0]
    if kpi == SHIPPED_CUSTOMERS:
        return [("", first.entity, 0, 1)]
    if kpi == COSTS:
        return [("", first.label, exact(first.num), 0)]
    if len(group) == 1:
        num, den = exact(first.num), exact(first.den)
        return [("", "", num, den)] + ([(first.person, "", num, den)] if first.person else [])
    parts: list[tuple[str, str, Exact, Exact]] = [
        (person, "", exact(t.num), exact(t.den))
        for (_, person, _, _), t in per_entity(group, by_person=False).items()
    ]
    personal = [r for r in group if r.person]
    parts += [
        (person, "", exact(t.num), exact(t.den))
        for (_, person, _, _), t in per_entity(personal, by_person=True).items()
    ]
    return parts


def changes(into: dict[SumKey, list[Any]], old: dict[SumKey, Sum], new: dict[SumKey, Sum]) -> None:
    """`into` += `new` - `old`, for the keys whose sum changed."""
    for key, value in new.items():
        before = old.get(key)
        if before != value:
            s = into.setdefault(key, [0, 0, 0])
            for i in range(3):
                s[i] += value[i] - (before[i] if before is not None else 0)
    for key, before in old.items():
        if key not in new:
            s = into.setdefault(key, [0, 0, 0])
            for i in range(3):
                s[i] -= before[i]
