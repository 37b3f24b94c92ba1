"""Pages of a read model's answer, walked with an opaque cursor. Pure: no ledger, no database.

A cursor pins what the walk's first page read: the position of its cut, the time its items are
settled at, the query's filters (a digest) and the sort key of the last item given, so every
page of one walk reads the same state however many events are appended meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_CURSOR_LENGTH = 1024  # characters: a cursor the ledger gives is far shorter
VERSION = 1


class CursorError(ValueError):
    """A cursor that is malformed or was given for another query (422, naming `cursor`)."""


@dataclass(frozen=True)
class Cursor:
    """Where the next page of a walk starts."""

    query: str  # digest of the walk's filters
    position: int  # the walk's cut
    now: str  # the time the walk's items are settled at (formatted UTC)
    after: tuple[Any, ...]  # sort key of the last item given

    def encode(self) -> str:
        raw = orjson.dumps([VERSION, self.query, self.position, self.now, list(self.after)])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def query_digest(**filters: Any) -> str:
    """What ties a cursor to its query: a short digest of the filters (None for absent ones)."""
    return hashlib.sha256(orjson.dumps(filters, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def decode(text: str, query: str, key_types: tuple[type, ...]) -> Cursor:
    """The cursor `text` of a walk of `query`, whose sort keys are of `key_types`."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        version, digest, position, now, after = orjson.loads(raw)
    except (ValueError, TypeError, binascii.Error) as e:
        raise CursorError("not a cursor this ledger gave") from e
    fields = (version == VERSION, _is(digest, str), _is(position, int), _is(now, str))
    if not all(fields) or position < 0 or not _is_key(after, key_types):
        raise CursorError("not a cursor this ledger gave")
    if digest != query:
        raise CursorError("the cursor belongs to a query with other filters")
    return Cursor(digest, position, now, tuple(after))


# An integer of a cursor fits a signed 64-bit column (SQLite INTEGER, PostgreSQL bigint).
MAX_INT = 2**63 - 1


def _is(value: Any, kind: type) -> bool:
    if isinstance(value, int) and not -MAX_INT <= value <= MAX_INT:
        return False
    return isinstance(value, kind) and not isinstance(value, bool)


def _is_key(value: Any, key_types: tuple[type, ...]) -> bool:
    return (
        isinstance(value, list)
        and len(value) == len(key_types)
        and all(_is(v, t) for v, t in zip(value, key_types, strict=True))
    )
