"""An event's leaf in the Merkle tree: exactly the bytes docs/CANONICAL.md describes, computed
here again with the standard library only, and refused for anything that is not an event's."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.leaf import LEAF_SIZE, event_leaf_hash, leaf_bytes

HASH = "ab" * 32


def by_the_document(position: int, recorded_at: str, event_hash: str) -> bytes:
    """The leaf hash as an auditor computes it from docs/CANONICAL.md."""
    leaf = b"\x01" + position.to_bytes(8, "big") + recorded_at.encode() + bytes.fromhex(event_hash)
    return hashlib.sha256(b"\x00" + leaf).digest()


def test_a_leaf_is_version_position_recorded_at_and_hash() -> None:
    leaf = leaf_bytes(258, "2026-12-01T08:00:00.000001Z", HASH)
    assert leaf == (
        b"\x01" + b"\x00" * 6 + b"\x01\x02" + b"2026-12-01T08:00:00.000001Z" + b"\xab" * 32
    )
    assert len(leaf) == LEAF_SIZE == 68


@given(
    position=st.integers(1, 2**63 - 1),
    at=st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    digest=st.binary(min_size=32, max_size=32),
)
def test_the_leaf_hash_is_what_the_document_says(
    position: int, at: datetime, digest: bytes
) -> None:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    stamp = stamp.rjust(27, "0")  # strftime writes years before 1000 with fewer digits
    assert event_leaf_hash(position, at, digest.hex()) == by_the_document(
        position, stamp, digest.hex()
    )


def test_a_time_in_another_offset_is_sealed_as_the_same_utc_moment() -> None:
    moment = datetime(2026, 12, 1, 16, 0, tzinfo=timezone(timedelta(hours=8)))
    assert leaf_bytes(1, moment, HASH) == leaf_bytes(1, "2026-12-01T08:00:00.000000Z", HASH)


@pytest.mark.parametrize(
    ("position", "recorded_at", "event_hash"),
    [
        (0, "2026-12-01T08:00:00.000000Z", HASH),
        (2**63, "2026-12-01T08:00:00.000000Z", HASH),
        (1, "2026-12-01T08:00:00Z", HASH),
        (1, "2026-12-01T08:00:00.000000+00:00", HASH),
        (1, "2026-12-01T08:00:00.000000Z", HASH.upper()),
        (1, "2026-12-01T08:00:00.000000Z", HASH[:-2]),
    ],
)
def test_what_is_not_an_events_leaf_is_refused(
    position: int, recorded_at: str, event_hash: str
) -> None:
    with pytest.raises(ValueError):
        leaf_bytes(position, recorded_at, event_hash)


def test_the_snippet_in_the_document_computes_the_leaf_hash() -> None:
    text = (Path(__file__).parents[2] / "docs" / "CANONICAL.md").read_text()
    block = next(b.split("```", 1)[0] for b in text.split("```python")[1:] if "def leaf_hash" in b)
    scope: dict[str, Any] = {}
    exec(block, scope)
    stamp = "2026-12-01T08:00:00.000001Z"
    assert scope["leaf_hash"](77, stamp, HASH) == event_leaf_hash(77, stamp, HASH)
