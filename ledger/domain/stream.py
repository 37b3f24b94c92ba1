"""What every stream has in common: its hash chain, its version and the rules of SPEC §6."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate
from pydantic import ValidationError

from ledger.domain.chain import GENESIS_HASH, chain_hash
from ledger.domain.errors import InvalidEventError, StreamRuleError
from ledger.domain.events import VOCABULARY, StreamType, data_model
from ledger.domain.messages import readable
from ledger.domain.time import parse_time

STREAM_NAMESPACE = uuid5(NAMESPACE_URL, "https://quality-ledger.invalid/streams")
MAX_CLOCK_SKEW = timedelta(minutes=5)
SYSTEM_ONLY_TYPES = frozenset({"escalation.raised"})


def stream_uuid(stream_type: str, stream_id: str) -> UUID:
    """The stable aggregate id of a business stream such as ("batch", "B-2026-0142")."""
    return uuid5(STREAM_NAMESPACE, f"{stream_type}:{stream_id}")


def check_envelope(record: dict[str, Any], now: datetime) -> None:
    """Rules of one envelope that need no stored state (422 when broken)."""
    event_type = record["type"]
    stream_type = record["stream"]["type"]
    if stream_type not in VOCABULARY[event_type][1]:
        allowed = ", ".join(VOCABULARY[event_type][1])
        raise InvalidEventError("type", f"{event_type} belongs on a {allowed} stream")
    if parse_time(record["occurred_at"]) > now + MAX_CLOCK_SKEW:
        raise InvalidEventError("occurred_at", "lies more than 5 minutes after the ledger's clock")


class LedgerStream(Aggregate):
    """One stream of SPEC §6: a batch, a complaint or a plan."""

    stream_type: ClassVar[StreamType]
    opening_type: ClassVar[str | None] = None

    class Opened(Aggregate.Created):
        record: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.absorb(self.record)

    class Recorded(Aggregate.Event):
        record: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.absorb(self.record)

    @classmethod
    def open(cls, record: dict[str, Any], *, system: bool) -> LedgerStream:
        """Start the stream with its first event."""
        cls.check_first(record)
        cls.check_common(record, system=system, types={})
        sealed = seal(record, version=1, prev_hash=GENESIS_HASH)
        originator_id = stream_uuid(cls.stream_type, record["stream"]["id"])
        timestamp = parse_time(record["occurred_at"])
        return cls._create(cls.Opened, id=originator_id, record=sealed, timestamp=timestamp)

    def record(self, record: dict[str, Any], *, system: bool) -> None:
        """Append one more event to the stream, after checking the stream rules."""
        if self.opening_type is not None and record["type"] == self.opening_type:
            raise StreamRuleError(f"{self.stream_type} {self.stream_id} is already started")
        self.check_common(record, system=system, types=self.types)
        self.check_next(record)
        sealed = seal(record, version=self.version + 1, prev_hash=self.last_hash)
        self.trigger_event(
            self.Recorded, record=sealed, timestamp=parse_time(record["occurred_at"])
        )

    def absorb(self, record: dict[str, Any]) -> None:
        """Evolve the stream's state with one sealed record."""
        if record["version"] == 1:
            self.types: dict[str, str] = {}
        self.last_hash = record["hash"]
        self.stream_id = record["stream"]["id"]
        self.types[record["event_id"]] = record["type"]
        self.evolve(record)

    @classmethod
    def check_first(cls, record: dict[str, Any]) -> None:
        if cls.opening_type is not None and record["type"] != cls.opening_type:
            raise StreamRuleError(
                f"{cls.stream_type} {record['stream']['id']} does not exist yet: "
                f"it starts with {cls.opening_type}"
            )

    @staticmethod
    def check_common(record: dict[str, Any], *, system: bool, types: dict[str, str]) -> None:
        if record["type"] in SYSTEM_ONLY_TYPES and not system:
            raise StreamRuleError(f"only the ledger appends {record['type']}")
        if record["type"] == "event.corrected":
            target = record["data"]["corrects_event_id"]
            corrected_type = types.get(target)
            if corrected_type is None:
                raise StreamRuleError(
                    f"event.corrected names {target}, which is not an event of this stream"
                )
            if corrected_type == "event.corrected":
                raise StreamRuleError("a correction corrects an original event, not a correction")
            if corrected_type in SYSTEM_ONLY_TYPES and not system:
                # Its corrected data would count as the ledger's own fact.
                raise StreamRuleError(f"only the ledger corrects {corrected_type}")
            try:
                data_model(corrected_type).model_validate(record["data"]["data"])
            except ValidationError as e:
                first = readable(e.errors())[0]
                where = ".".join(str(p) for p in first["loc"])
                raise InvalidEventError(
                    f"data.data.{where}".rstrip("."),
                    f"{first['msg']} (as data of {corrected_type})",
                ) from None

    def check_next(self, record: dict[str, Any]) -> None:
        """Rules of the stream type for events after the first; overridden per stream."""

    def evolve(self, record: dict[str, Any]) -> None:
        """State that the stream rules need; overridden per stream."""


def seal(record: dict[str, Any], *, version: int, prev_hash: str) -> dict[str, Any]:
    """The record with its place in the stream and its link in the hash chain."""
    sealed = {**record, "version": version, "prev_hash": prev_hash}
    sealed["hash"] = chain_hash(prev_hash, sealed)
    return sealed
