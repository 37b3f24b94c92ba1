"""The one form the ledger writes times in: its text sorts as the times do, any year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.time import format_time, parse_time

times = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


@given(times, times)
def test_formatted_times_sort_as_the_times_do_and_read_back(a: datetime, b: datetime) -> None:
    assert (format_time(a) < format_time(b)) == (a < b)
    assert parse_time(format_time(a)) == a


def test_a_year_before_1000_has_four_digits_and_an_offset_becomes_utc() -> None:
    assert format_time(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000000Z"
    shanghai = timezone(timedelta(hours=8))
    assert format_time(datetime(2026, 1, 1, 8, tzinfo=shanghai)) == "2026-01-01T00:00:00.000000Z"
