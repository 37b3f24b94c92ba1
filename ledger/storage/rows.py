"""Rows the recorders return beside the library's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from ledger.domain.time import format_time


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One stored `event_id`: where it is in the feed, and the stored event."""

    event_id: str
    position: int
    recorded_at: datetime
    state: bytes

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = orjson.loads(self.state)
        return record

    def receipt(self) -> dict[str, Any]:
        record = self.record()
        stream = record["stream"]
        return {
            "event_id": self.event_id,
            "stream": {"type": stream["type"], "id": stream["id"]},
            "version": record["version"],
            "position": self.position,
            "recorded_at": format_time(self.recorded_at),
            "hash": record["hash"],
        }


@dataclass(frozen=True, slots=True)
class StoredRow:
    """One stored event with the fields the ledger stamps outside the record."""

    position: int
    recorded_at: datetime
    state: bytes

    def json(self) -> bytes:
        """The event as the API shows it: the stored record plus position and recorded_at."""
        head = b'{"position":%d,"recorded_at":"%s",' % (
            self.position,
            format_time(self.recorded_at).encode(),
        )
        return head + self.state[1:]


# (event type, stream type, stream id): a stream that holds an event of that type
StreamType = tuple[str, str, str]


def predecessors(stored_events: Sequence[StoredEvent]) -> list[tuple[Any, int]]:
    """(stream, version) of the event each stream's first event here follows: what must be
    stored already for these events to continue their streams without a gap."""
    first: dict[Any, int] = {}
    for s in stored_events:
        known = first.get(s.originator_id)
        if known is None or s.originator_version < known:
            first[s.originator_id] = s.originator_version
    return [(o, v - 1) for o, v in first.items() if v > 1]


class LedgerRecorder(Protocol):
    """The queries the ledger adds to the library's application recorder."""

    def lookup(self, event_ids: list[str]) -> list[IndexRow]: ...

    def select_streams(self, originator_ids: list[UUID]) -> list[StoredEvent]: ...

    def select_rows(
        self, after: int, limit: int, until: datetime | None = None
    ) -> list[StoredRow]: ...

    def select_stream_rows(self, originator_id: UUID) -> list[StoredRow]: ...

    def position_at(self, until: datetime) -> int: ...

    def streams_with(self, types: list[str]) -> list[tuple[str, str]]: ...

    def select_streams_rows(self, originator_ids: list[UUID]) -> dict[UUID, list[StoredRow]]: ...

    def check_durability(self) -> None: ...

    def max_notification_id(self) -> int | None: ...
