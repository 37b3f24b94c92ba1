"""The time buckets of the pre-added KPI sums (ledger/readmodels/kpis/sums.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.time import format_time
from ledger.readmodels.kpis.report import Period
from ledger.readmodels.kpis.sums import path_of, tiling

ZONES = sorted(available_timezones())
periods = st.builds(
    lambda year, kind, n: Period.parse(
        f"{year}" if kind == 0 else f"{year}-Q{n % 4 + 1}" if kind == 1 else f"{year}-{n:02d}"
    ),
    st.integers(1990, 2100),
    st.integers(0, 2),
    st.integers(1, 12),
)


@given(
    period=periods,
    zone=st.sampled_from(ZONES),
    offsets=st.lists(st.integers(-3, 3)),
    fraction=st.floats(0, 1),
)
def test_a_tiling_holds_exactly_the_times_of_its_window(
    period: Period, zone: str, offsets: list[int], fraction: float
) -> None:
    start, end = period.window(ZoneInfo(zone))
    pieces = tiling(start, end)
    if pieces is None:  # the read adds up every row instead
        return
    assert len(pieces) < 100 and pieces[0].start == start and pieces[-1].end == end
    assert all(a.end == b.start for a, b in pairwise(pieces))
    lo = datetime.fromisoformat(start[:-1]).replace(tzinfo=UTC)
    hi = datetime.fromisoformat(end[:-1]).replace(tzinfo=UTC)
    times = [lo + timedelta(microseconds=k, minutes=7 * k) for k in offsets]
    times += [hi + timedelta(microseconds=k, minutes=7 * k) for k in offsets]
    times.append(lo + (hi - lo) * fraction)
    for t in times:
        at = format_time(t)
        path = path_of(at)
        holding = [p for p in pieces if p.start <= at < p.end]
        # in the window: in exactly one piece, the bucket at the piece's depth on its path
        assert len(holding) == (1 if start <= at < end else 0), (at, pieces)
        for p in holding:
            assert path[p.depth - 1] == p.bucket, (at, path, p)
        assert not {p.bucket for p in pieces if p not in holding} & set(path)


def test_every_time_zone_of_today_tiles_its_periods_with_few_buckets() -> None:
    for zone in ZONES:
        for text in ("2026-03", "2026-11", "2026-Q1", "2026-Q4", "2026", "2027"):
            pieces = tiling(*Period.parse(text).window(ZoneInfo(zone)))
            assert pieces is not None and len(pieces) <= 60, (zone, text)


def test_buckets_nest_year_quarter_month_and_edge_days() -> None:
    assert path_of("2026-06-15T08:00:00.000000Z") == ("Y2026", "K2026-2", "M2026-06")
    assert path_of("2026-05-31T23:59:59.999999Z") == (
        "Y2026", "K2026-2", "D2026-05-31", "H2026-05-31T23", "S2026-05-31T23:45",
    )  # fmt: skip
    assert path_of("2026-07-01T00:00:00.000000Z") == (
        "Y2026", "D2026-07-01", "H2026-07-01T00", "S2026-07-01T00:00",
    )  # fmt: skip
    assert path_of("2026-12-31T10:20:00.000000Z")[0] == "D2026-12-31"
    assert path_of("0999-01-01T00:00:00.000000Z") == ()
    utc_year = tiling(*Period.parse("2026").window(ZoneInfo("UTC")))
    assert utc_year is not None
    assert [p.bucket for p in utc_year] == ["D2026-01-01", "Y2026", "D2026-12-31"]
