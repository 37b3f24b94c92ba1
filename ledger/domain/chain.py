"""The per-stream hash chain and the canonical serialization it hashes (docs/CANONICAL.md)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

# Fields of a stored record that the hash covers, besides `prev_hash` which is prepended.
HASHED_FIELDS = (
    "event_id",
    "type",
    "stream",
    "version",
    "occurred_at",
    "actor",
    "source",
    "data",
    "attributes",
)


def canonical(record: dict[str, Any]) -> bytes:
    """The canonical form v1: hashed fields only, keys sorted, no whitespace, UTF-8."""
    return orjson.dumps({k: record[k] for k in HASHED_FIELDS}, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, record: dict[str, Any]) -> str:
    """SHA-256 over `prev_hash` (64 ASCII hex digits) followed by the canonical form."""
    return hashlib.sha256(prev_hash.encode("ascii") + canonical(record)).hexdigest()


def content_digest(record: dict[str, Any]) -> str:
    """What makes two appends of one `event_id` "the same": everything but the chain position."""
    fields = {k: record[k] for k in HASHED_FIELDS if k != "version"}
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()


def verify_stream(records: list[dict[str, Any]]) -> int | None:
    """Index of the first record whose chain does not hold, or None when the stream is intact."""
    prev = GENESIS_HASH
    for i, record in enumerate(records):
        if record.get("prev_hash") != prev or record.get("version") != i + 1:
            return i
        if chain_hash(prev, record) != record.get("hash"):
            return i
        prev = record["hash"]
    return None
