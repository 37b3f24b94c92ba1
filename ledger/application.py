"""`Ledger`: the one way to change the ledger, and the reads of what it stores."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    OperationalError,
    StoredEvent,
)

from ledger.domain.aggregates import STREAM_CLASSES
from ledger.domain.chain import content_digest
from ledger.domain.errors import (
    EventIdConflictError,
    InvalidEventError,
    LedgerError,
    StreamNotFoundError,
    StreamsBusyError,
    UnavailableError,
    VersionConflictError,
)
from ledger.domain.events import EnvelopeBase
from ledger.domain.stream import LedgerStream, check_envelope, stream_uuid
from ledger.domain.time import Clock, format_time, utc_now
from ledger.storage.database import Database
from ledger.storage.mapper import RecordMapper
from ledger.storage.rows import IndexRow, LedgerRecorder, StoredRow, StreamType

_Streams = dict[tuple[str, str], LedgerStream | None]
MAX_BATCH = 1000
# An append without expected_version that a concurrent writer beat to the next version decides
# again on what is stored, for this long at most (then 503 with Retry-After, never 409).
APPEND_WAIT_SECONDS = 5.0
LOCK_STRIPES = 256  # per-stream locks of one process: a stream's writers queue on its stripe
STREAM_CACHE_SIZE = 4096  # streams whose latest state an append can decide on without a read


@dataclass(frozen=True)
class AppendResult:
    """The receipts of an append, in the order of the envelopes."""

    receipts: list[dict[str, Any]]
    created: bool  # False when every event was already stored: an exact retry
    appended: int  # how many events this call stored


def _receipt(record: dict[str, Any], position: int, recorded_at: datetime) -> dict[str, Any]:
    return {
        "event_id": record["event_id"],
        "stream": record["stream"],
        "version": record["version"],
        "position": position,
        "recorded_at": format_time(recorded_at),
        "hash": record["hash"],
    }


@dataclass
class _Pending:
    """An append's items and which of their events the store was found to hold already."""

    items: Sequence[tuple[dict[str, Any], int | None]]
    records: dict[str, dict[str, Any]]  # by event_id, in the request's order
    stored: dict[str, IndexRow] = field(default_factory=dict)

    @property
    def event_ids(self) -> list[str]:
        return list(self.records)

    @property
    def todo(self) -> list[tuple[dict[str, Any], int | None]]:
        """The items whose events are still to be stored."""
        return [(r, v) for r, v in self.items if r["event_id"] not in self.stored]

    def result(self, receipts: list[dict[str, Any]]) -> AppendResult:
        """The answer once the events of `todo` are stored with these `receipts`."""
        by_id = {k: r.receipt() for k, r in self.stored.items()}
        by_id |= {r["event_id"]: r for r in receipts}
        return AppendResult(
            [by_id[i] for i in self.event_ids], created=True, appended=len(self.todo)
        )


def _pause(attempt: int, keys: Sequence[tuple[str, str]], deadline: float) -> None:
    """Before a third decision or later: another process took a version first even though the
    last decision was made on what had just been read. Wait a little (longer each time) and
    decide again, until the deadline (then StreamsBusyError)."""
    if attempt > 1:
        if time.monotonic() >= deadline:
            raise StreamsBusyError(keys)
        time.sleep(random.uniform(0, min(0.001 * 2**attempt, 0.05)))


class StreamCache:
    """The streams this process appended to last, as it left them: most appends then read
    nothing before they write. Never trusted alone: a stream that moved on elsewhere makes
    the insert fail on its unique (stream, version), and the ledger then reads it again.

    A stream is taken out while an append decides on it (which changes it) and given back
    only after that append is stored, so a failed append never leaves a changed stream here.
    """

    def __init__(self, size: int = STREAM_CACHE_SIZE) -> None:
        self.size = size
        self._streams: OrderedDict[tuple[str, str], LedgerStream] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, keys: Sequence[tuple[str, str]]) -> _Streams:
        """The cached streams of `keys` (None: not held, taken to be new), taken out."""
        with self._lock:
            return {key: self._streams.pop(key, None) for key in keys}

    def give(self, streams: _Streams) -> None:
        """Keep `streams` after a stored append (a newer version already held wins)."""
        with self._lock:
            for key, stream in streams.items():
                if stream is None:
                    continue
                held = self._streams.get(key)
                if held is None or held.version < stream.version:
                    self._streams[key] = stream
                    self._streams.move_to_end(key)
            while len(self._streams) > self.size:
                self._streams.popitem(last=False)


class StreamLocks:
    """Serialises this process's appends per stream: its writers of a stream queue for it
    instead of racing each other to the stream's next version (and losing, again and again).
    Streams share a fixed set of locks by hash; a batch takes its streams' locks in one order."""

    def __init__(self, stripes: int = LOCK_STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, keys: Sequence[tuple[str, str]], deadline: float) -> Iterator[None]:
        """Hold the locks of `keys`; StreamsBusyError if they are not free by `deadline`."""
        stripes = sorted({hash(key) % len(self._locks) for key in keys})
        held: list[threading.Lock] = []
        try:
            for i in stripes:
                lock = self._locks[i]
                if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    raise StreamsBusyError(keys)
                held.append(lock)
            yield
        finally:
            for lock in reversed(held):
                lock.release()


class Ledger(Application[UUID]):
    """Appends validated envelopes to their streams, atomically, with their hash chain."""

    name = "Ledger"

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utc_now,
        pool_size: int = 10,
        append_wait: float = APPEND_WAIT_SECONDS,
    ):
        self.database = database
        self.clock = clock
        self.append_wait = append_wait
        self.streams = StreamCache()
        self.locks = StreamLocks()
        super().__init__(env=database.library_env(pool_size))

    def construct_mapper(self) -> Mapper[UUID]:
        return RecordMapper()

    @property
    def store(self) -> LedgerRecorder:
        return cast(LedgerRecorder, self.recorder)

    def append(
        self,
        envelopes: Sequence[EnvelopeBase],
        *,
        source: str,
        system: bool = False,
        skip_stored: bool = False,
    ) -> AppendResult:
        """Append every envelope or none; an exact retry returns the original receipts.

        With `skip_stored`, events already stored (with the same content) are left out and the
        rest appended: how a bulk import resumes after a stop.
        """
        items = [(e.to_record(source), e.expected_version) for e in envelopes]
        return self.append_records(items, system=system, skip_stored=skip_stored)

    def append_records(
        self,
        items: Sequence[tuple[dict[str, Any], int | None]],
        *,
        system: bool = False,
        skip_stored: bool = False,
    ) -> AppendResult:
        """Append records (the sender's fields plus `source`) with their expected versions.

        The decision is made on the streams as this process last wrote them (`StreamCache`;
        a stream it does not hold is taken to be new) and checked by the database: a stream
        that moved on elsewhere makes the insert fail on its unique version, a stored event_id
        on its unique key. Then, and after any rule the decision broke on those assumptions,
        the streams are read from the database and the decision is made again; what is
        finally answered was decided on what is stored. An exact retry gets its receipts.

        This process's appends to a stream wait for each other (`StreamLocks`); one that lost
        the stream's next version to another process decides again until `append_wait` has
        passed, then StreamsBusyError (503). Only an expected_version gives a 409.
        """
        records = self._checked(items)
        keys = list(dict.fromkeys((r["stream"]["type"], r["stream"]["id"]) for r, _ in items))
        deadline = time.monotonic() + self.append_wait
        pending = _Pending(items, records)
        with unavailable_on_outage(), self.locks.hold(keys, deadline):
            return self._append_held(pending, keys, deadline, system, skip_stored)

    def _append_held(
        self,
        pending: _Pending,
        keys: list[tuple[str, str]],
        deadline: float,
        system: bool,
        skip_stored: bool,
    ) -> AppendResult:
        """`append_records` once this process's other writers of the streams are done.

        One rule: decide and store; when the store refuses the events, or a rule breaks on
        what was decided from the database, ask the store (`_from_store`) and answer from it
        if it can; otherwise read the streams again and decide again. A rule broken on what
        this process only assumed (`StreamCache`) reads the streams first.
        """
        if skip_stored and (answer := self._from_store(pending, skip_stored)) is not None:
            return answer  # a bulk import that resumes: what is stored is left out
        streams, fresh = self.streams.take(keys), False
        for attempt in itertools.count():
            _pause(attempt, keys, deadline)
            try:
                events, types = self._decide(pending.todo, system=system, streams=streams)
            except LedgerError:
                if fresh:
                    known = len(pending.stored)
                    if (answer := self._from_store(pending, skip_stored)) is not None:
                        return answer
                    if len(pending.stored) == known:  # nothing the store knows changes it
                        raise
                streams, fresh = self._load(keys), True
                continue
            stored = self._put(events, types)
            if stored is None:
                # A stored event_id (a retry, or the reply to our COMMIT was lost and the
                # library's retry hit our own rows), or a stream that moved on elsewhere.
                if (answer := self._from_store(pending, skip_stored)) is not None:
                    return answer
                # Decide again on what is stored: an expected_version that no longer
                # matches is answered there, and a stream merely assumed new or held
                # stale (any stream of a batch) is not mistaken for one.
                streams, fresh = self._load(keys), True
                continue
            self.streams.give(streams)
            return pending.result(stored)
        raise AssertionError("unreachable")  # pragma: no cover

    def _put(self, events: list[Any], types: list[StreamType]) -> list[dict[str, Any]] | None:
        """Store `events`; their receipts, or None if the database refused them on a unique
        key (a stored event_id, or a stream's version taken by another writer)."""
        stamps: list[datetime] = []
        try:
            # The event store directly: `Application.save` would collect the events
            # again (with slow runtime protocol checks) for hooks the ledger leaves unused.
            recordings = self.events.put(
                events,
                event_ids=[e.record["event_id"] for e in events],
                stream_types=types,
                stamps=stamps,
            )
        except IntegrityError:
            return None
        return [
            _receipt(event.record, recording.notification.id, stamp)
            for event, recording, stamp in zip(events, recordings, stamps, strict=True)
        ]

    def _from_store(self, pending: _Pending, skip_stored: bool) -> AppendResult | None:
        """What the store says of the request's events: every one stored as sent answers with
        the original receipts (an exact retry); one stored with other content is 409. Some
        stored: 409 for a plain append (a batch is retried whole), left out with
        `skip_stored` (another import stored them meanwhile). None: decide on the rest."""
        stored = self._stored(pending.event_ids, pending.records)
        if len(stored) == len(pending.event_ids):
            return self._already_stored(pending.event_ids, stored)
        if stored and not skip_stored:
            raise EventIdConflictError(
                "some event_ids of this request are already stored and others are not: "
                "a batch is retried whole, with the same events"
            )
        pending.stored = stored
        return None

    def _checked(
        self, items: Sequence[tuple[dict[str, Any], int | None]]
    ) -> dict[str, dict[str, Any]]:
        """The records by event_id, after the rules that need no stored state (422)."""
        if not items:
            raise InvalidEventError("events", "give at least one event")
        if len(items) > MAX_BATCH:
            raise InvalidEventError("events", f"at most {MAX_BATCH} events per request")
        now = self.clock()

        def prefix(i: int) -> str:
            return f"events[{i}]." if len(items) > 1 else ""

        records: dict[str, dict[str, Any]] = {}
        for i, (record, _) in enumerate(items):
            if record["event_id"] in records:
                raise InvalidEventError(f"{prefix(i)}event_id", "appears twice in one request")
            records[record["event_id"]] = record
            try:
                check_envelope(record, now)
            except InvalidEventError as e:
                raise InvalidEventError(prefix(i) + e.field, e.message) from None
        return records

    def _stored(
        self, event_ids: list[str], records: dict[str, dict[str, Any]]
    ) -> dict[str, IndexRow]:
        """The requested event_ids already stored; 409 if one is stored with other content."""
        return self._check_stored(self.store.lookup(event_ids), records)

    @staticmethod
    def _check_stored(
        found: list[IndexRow], records: dict[str, dict[str, Any]]
    ) -> dict[str, IndexRow]:
        rows = {r.event_id: r for r in found}
        for event_id, row in rows.items():
            if content_digest(row.record()) != content_digest(records[event_id]):
                raise EventIdConflictError(
                    f"event_id {event_id} is already stored with other content"
                )
        return rows

    @staticmethod
    def _already_stored(event_ids: list[str], rows: dict[str, IndexRow]) -> AppendResult:
        """The answer to a request whose every event is stored: their original receipts."""
        receipts = [rows[event_id].receipt() for event_id in event_ids]
        return AppendResult(receipts, created=False, appended=0)

    def _decide(
        self,
        items: Sequence[tuple[dict[str, Any], int | None]],
        *,
        system: bool,
        streams: _Streams,
    ) -> tuple[list[Any], list[StreamType]]:
        """The events to store for `items`, decided on `streams` (the items' streams, None for
        one taken to be new), and the (type, stream) pairs that are new to `stream_types`."""
        for record, expected in items:
            key = (record["stream"]["type"], record["stream"]["id"])
            if expected is not None:
                stream = streams[key]
                current = stream.version if stream is not None else 0
                if current != expected:
                    raise VersionConflictError(
                        f"{key[0]} {key[1]} is at version {current}, not {expected}"
                    )
        known = {
            (t, key[0], key[1])
            for key, stream in streams.items()
            if stream is not None
            for t in stream.types.values()
        }
        types: dict[StreamType, None] = {}
        order: dict[str, int] = {}
        for i, (record, _) in enumerate(items):
            key = (record["stream"]["type"], record["stream"]["id"])
            stream = streams[key]
            if stream is None:
                streams[key] = STREAM_CLASSES[key[0]].open(record, system=system)
            else:
                stream.record(record, system=system)
            order[record["event_id"]] = i
            pair = (record["type"], key[0], key[1])
            if pair not in known:
                types[pair] = None
        events: list[Any] = [
            e for s in streams.values() if s is not None for e in s.collect_events()
        ]
        events.sort(key=lambda e: order[e.record["event_id"]])
        return events, list(types)

    def _load(self, keys: list[tuple[str, str]]) -> _Streams:
        ids = {stream_uuid(t, i): (t, i) for t, i in keys}
        return self._project(ids, self.store.select_streams(list(ids)))

    def _project(
        self, ids: dict[UUID, tuple[str, str]], stored_events: Sequence[StoredEvent]
    ) -> _Streams:
        """The streams of `ids` (None for one never written) from their stored events."""
        streams: dict[UUID | str, Any] = {}
        to_domain_event = self.mapper.to_domain_event
        for stored in stored_events:
            # What the library's `project_aggregate` does, without its runtime `Protocol`
            # isinstance check on every event (a tenth of a single append's CPU).
            o = stored.originator_id
            event: Any = to_domain_event(stored)
            streams[o] = event.mutate(streams.get(o))
        return {ids[o]: streams.get(o) for o in ids}

    def feed(self, after: int, limit: int) -> list[StoredRow]:
        """Stored events after `after`, in position order."""
        with unavailable_on_outage():
            return self.store.select_rows(after, limit)

    def stream(self, stream_type: str, stream_id: str) -> list[StoredRow]:
        """One stream's events in version order."""
        with unavailable_on_outage():
            rows = self.store.select_stream_rows(stream_uuid(stream_type, stream_id))
        if not rows:
            raise StreamNotFoundError(f"no {stream_type} stream {stream_id!r}")
        return rows

    def stream_rows(self, stream_type: str, stream_id: str) -> list[StoredRow]:
        """One stream's events in version order; empty for a stream never written."""
        with unavailable_on_outage():
            return self.store.select_stream_rows(stream_uuid(stream_type, stream_id))

    def streams_rows(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[StoredRow]]:
        """Several streams' events in version order, in one read."""
        ids = {stream_uuid(t, i): (t, i) for t, i in keys}
        with unavailable_on_outage():
            rows = self.store.select_streams_rows(list(ids))
        return {ids[o]: found for o, found in rows.items()}

    def events_by_id(self, event_ids: list[str]) -> dict[str, IndexRow]:
        """The stored events of these event_ids (those that are stored), by event_id."""
        with unavailable_on_outage():
            return {r.event_id: r for r in self.store.lookup(event_ids)}

    def streams_with(self, *types: str) -> list[tuple[str, str]]:
        """The (stream type, stream id) of every stream holding an event of these types."""
        with unavailable_on_outage():
            return self.store.streams_with(list(types))

    def position_at(self, until: datetime | None) -> int:
        """The last position recorded at or before `until` (now, if None): an as-of cut."""
        if until is None:
            return self.last_position()
        with unavailable_on_outage():
            return self.store.position_at(until)

    def last_position(self) -> int:
        with unavailable_on_outage():
            return self.store.max_notification_id() or 0


@contextmanager
def unavailable_on_outage() -> Iterator[None]:
    """Turn a lost database into UnavailableError (503), never a 500."""
    try:
        yield
    except (OperationalError, InterfaceError) as e:
        raise UnavailableError(str(e)) from e
