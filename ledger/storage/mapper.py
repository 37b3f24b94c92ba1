"""Serialization of stored events: the stored state *is* the record's canonical JSON."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import CanInitAggregate
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

from ledger.domain.aggregates import STREAM_CLASSES
from ledger.domain.time import parse_time


class _Unused(Transcoder):
    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError


def encode_record(record: dict[str, Any]) -> bytes:
    """Stored state: sorted keys, no whitespace, UTF-8 (the canonical form plus chain fields)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


class RecordMapper(Mapper[UUID]):
    """Maps `LedgerStream` events to stored rows whose state is the record's JSON."""

    def __init__(self) -> None:
        super().__init__(transcoder=_Unused())
        self._opening_topics = {
            stream_type: get_topic(cls) for stream_type, cls in STREAM_CLASSES.items()
        }

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=get_topic(type(domain_event)),
            state=encode_record(domain_event.record),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        record = orjson.loads(stored_event.state)
        state: dict[str, Any] = {
            "originator_id": stored_event.originator_id,
            "originator_version": stored_event.originator_version,
            "timestamp": parse_time(record["occurred_at"]),
            "record": record,
        }
        if issubclass(cls, CanInitAggregate):
            state["originator_topic"] = self._opening_topics[record["stream"]["type"]]
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event
