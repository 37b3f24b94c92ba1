"""The bytes of an event's leaf in the ledger's Merkle tree (docs/CANONICAL.md, "The ledger
digest"): what the tree seals of each event beside its per-stream hash — its place in the
ledger-wide order and the time the database recorded it.

    leaf = 0x01 ‖ position (8 bytes, big-endian) ‖ recorded_at (27 ASCII bytes) ‖ hash (32 bytes)

`recorded_at` is written as the ledger writes every time (`format_time`: UTC, microseconds,
"Z"), always 27 characters for the years 0001–9999; `hash` is the event's hash (its 64 hex
digits as 32 bytes). The first byte is the leaf format's version. 68 bytes in all, so a leaf
needs no separators and no two events' leaves can be confused.
"""

from __future__ import annotations

import re
from datetime import datetime

from ledger.domain.merkle import leaf_hash
from ledger.domain.time import format_time

LEAF_VERSION = 1
LEAF_SIZE = 1 + 8 + 27 + 32
_HEX_HASH = re.compile(r"[0-9a-f]{64}")
_RECORDED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def leaf_bytes(position: int, recorded_at: datetime | str, event_hash: str) -> bytes:
    """The leaf of the event at `position`, recorded at `recorded_at` (a datetime, or the
    ledger's own form of it), whose hash is `event_hash` (64 lower-case hex digits)."""
    if not 0 < position < 2**63:
        raise ValueError(f"position {position} is outside 1..2^63-1")
    stamp = format_time(recorded_at) if isinstance(recorded_at, datetime) else recorded_at
    if not _RECORDED_AT.fullmatch(stamp):
        raise ValueError(f"recorded_at {stamp!r} is not in the ledger's form")
    if not _HEX_HASH.fullmatch(event_hash):
        raise ValueError(f"hash {event_hash!r} is not 64 lower-case hex digits")
    return (
        bytes([LEAF_VERSION])
        + position.to_bytes(8, "big")
        + stamp.encode("ascii")
        + bytes.fromhex(event_hash)
    )


def event_leaf_hash(position: int, recorded_at: datetime | str, event_hash: str) -> bytes:
    """The RFC 9162 leaf hash of the event: SHA-256(0x00 ‖ leaf)."""
    return leaf_hash(leaf_bytes(position, recorded_at, event_hash))
