"""Time as the ledger reads and writes it: RFC 3339, stored and compared in UTC, and the clock."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real time: the default clock (entry points take theirs from `ledger.bootstrap`)."""
    return datetime.now(UTC)


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds: the one form the ledger writes times in."""
    utc = value.astimezone(UTC)
    # isoformat pads the year to four digits (strftime's %Y does not, before 1000) and is
    # several times faster; "+00:00" becomes "Z".
    return utc.isoformat(timespec="microseconds")[:-6] + "Z"


# The common form, which datetime.fromisoformat reads as it is (twice as fast as the general path).
_PLAIN_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 time (as validated by `Timestamp`) to an aware datetime."""
    if _PLAIN_TIME.fullmatch(value):
        return datetime.fromisoformat(value)
    text = value.replace("z", "Z").replace("t", "T")
    if "." in text:
        # Python keeps microseconds: cut longer fractions, keep the offset.
        head, _, rest = text.partition(".")
        digits = re.match(r"[0-9]+", rest)
        assert digits is not None
        text = head + "." + digits.group(0)[:6].ljust(6, "0") + rest[digits.end() :]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
