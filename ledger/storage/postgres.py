"""PostgreSQL back-end: the library's recorder (table lock, no DB functions) plus the index."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from psycopg import Connection, Cursor
from psycopg.pq import ConnStatus
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier
from psycopg_pool import PoolTimeout

from ledger.storage.database import DurabilityError
from ledger.storage.rows import IndexRow, StoredRow, StreamType, predecessors

EVENTS_TABLE = "ledger_events"

# The library retries its recorder calls 10 times, 0.2 s apart, on any connection error. Right
# for a connection that broke mid-call: the retry runs on a fresh one (and if the broken call had
# committed, `Ledger.append` turns the retry's IntegrityError into the original receipts). Wrong
# when the pool found no database within its timeout: ten more timeouts would hold the request
# for a minute before its 503. So the calls below retry like the library, but not a pool timeout.
RETRY_ATTEMPTS = 10
RETRY_WAIT = 0.2
# psycopg_pool replaces a lost connection in the background, retrying for 5 minutes with waits of
# 1, 2, 4 … s: after an outage, requests would time out for that long although the database is
# back. With 0, a failed reconnect frees its slot and the next request opens a fresh connection.
RECONNECT_TIMEOUT = 0.0
POOL_FILL_SECONDS = 10.0
"""How long opening the ledger waits for the pool to hold its connections."""

T = TypeVar("T")


def _retried(call: Callable[[], T]) -> T:
    """`call()`, retried like the library does, except when the database is unreachable."""
    attempt = 1
    while True:
        try:
            return call()
        except (InterfaceError, OperationalError) as e:
            if attempt >= RETRY_ATTEMPTS or isinstance(e.__cause__, PoolTimeout):
                raise
        attempt += 1
        time.sleep(RETRY_WAIT)


def _check_locally(conn: Connection[Any]) -> None:
    """The pool's check of a connection it hands out, without the round trip of a pre-ping.

    Reads whatever the server sent on the idle connection (normally nothing): a connection the
    server or the network closed shows EOF here, and the pool replaces it. A connection that
    breaks silently is caught by the query that uses it, which `_retried` repeats on a fresh
    connection.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    conn.pgconn.consume_input()  # raises OperationalError on EOF or a socket error
    if conn.pgconn.status != ConnStatus.OK:
        raise psycopg.OperationalError("the connection is broken")


def _stored_event(row: dict[str, Any]) -> StoredEvent:
    return StoredEvent(
        row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
    )


def _index_row(row: dict[str, Any]) -> IndexRow:
    return IndexRow(
        row["event_id"], row["notification_id"], row["recorded_at"], bytes(row["state"])
    )


def _fill(pool: Any) -> None:
    """Open the pool and wait, POOL_FILL_SECONDS at most, until it holds its connections.

    Filled before anything takes a connection, the pool is full when the ledger is open: no
    pool worker is still connecting (and drawing on the process's `random`, which the workers
    use for jitter) after it, and the pool does not grow at once by one more connection for a
    first request that found it empty. A server that cannot give that many connections in time
    (its `max_connections` taken by other processes) leaves the ledger open with fewer, as the
    pool's own `wait` would not: it closes the pool for good.
    """
    pool.open(wait=False)
    deadline = time.monotonic() + POOL_FILL_SECONDS
    while pool.get_stats().get("pool_available", 0) < pool.min_size:
        if time.monotonic() >= deadline:
            return
        time.sleep(0.01)


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Stores events and the `event_id` index in one transaction; `recorded_at` is stamped by
    the column default `clock_timestamp()`, evaluated under the recorder's table lock."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = EVENTS_TABLE
    ) -> None:
        _fill(datastore.pool)
        super().__init__(datastore, events_table_name=events_table_name)
        self.datastore.pool.reconnect_timeout = RECONNECT_TIMEOUT
        # POSTGRES_PRE_PING makes the pool check each connection it hands out with a round trip
        # to the server (an empty query): a sixth of a batch's time. The same check, locally.
        self.datastore.pool._check = _check_locally
        schema = Identifier(self.datastore.schema)
        events = Identifier(events_table_name)
        # The events go in as four arrays rather than the library's one array of a composite
        # type. Arrays are sent in binary (%b): psycopg dumps text arrays in Python, quoting
        # each element with a regex, which took a fifth of a batch's time.
        # The receipt's recorded_at comes back with the position: no second query.
        # With a guard (when an event continues a stream), nothing is inserted unless each
        # stream's event before the first one inserted is stored (the guard's count): a version
        # after a gap is never written, whatever the writer believed, and
        # `_fetch_ids_after_insert_events` then finds no rows. One index probe per stream
        # (LATERAL … LIMIT 1, so that a generic plan cannot turn it into a scan).
        guard = SQL(
            " WHERE (SELECT count(*) FROM unnest(%b::uuid[], %b::bigint[]) AS p (o, v) "
            "CROSS JOIN LATERAL (SELECT 1 FROM {s}.{e} g WHERE g.originator_id = p.o "
            "AND g.originator_version = p.v LIMIT 1) AS found) = %b"
        ).format(s=schema, e=events)

        def insert(guarded: bool, returning: str) -> Composed:
            return SQL(
                "INSERT INTO {s}.{e} (originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]){guard} "
                "RETURNING {returning}"
            ).format(
                s=schema, e=events, guard=guard if guarded else SQL(""), returning=SQL(returning)
            )

        self.insert_events_statement = insert(False, "notification_id, recorded_at")
        self._insert_guarded = insert(True, "notification_id, recorded_at")
        # The positions come from the events' own insert (a data-modifying CTE), so the
        # event_id index goes in with the events, in one statement and one round trip.
        self._insert_with_ids = {
            guarded: SQL(
                "WITH e AS ({insert}), i AS (INSERT INTO {s}.event_ids (event_id, notification_id) "
                "SELECT x.event_id, e.notification_id FROM e JOIN unnest(%b::uuid[], %b::uuid[], "
                "%b::bigint[]) AS x (event_id, originator_id, originator_version) "
                "ON x.originator_id = e.originator_id "
                "AND x.originator_version = e.originator_version) "
                "SELECT notification_id, recorded_at FROM e ORDER BY notification_id"
            ).format(
                insert=insert(
                    guarded, "notification_id, recorded_at, originator_id, originator_version"
                ),
                s=schema,
            )
            for guarded in (False, True)
        }
        self._insert_types = SQL(
            "INSERT INTO {s}.stream_types (type, stream_type, stream_id) "
            "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[]) ON CONFLICT DO NOTHING"
        ).format(s=schema)
        self._lookup = SQL(
            "SELECT i.event_id::text, e.notification_id, e.recorded_at, e.state "
            "FROM {s}.event_ids i JOIN {s}.{e} e ON e.notification_id = i.notification_id "
            "WHERE i.event_id = ANY(%b::uuid[])"
        ).format(s=schema, e=events)
        self._select_streams = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {s}.{e} "
            "WHERE originator_id = ANY(%b::uuid[]) ORDER BY originator_id, originator_version"
        ).format(s=schema, e=events)
        self._select_rows = SQL(
            "SELECT notification_id, recorded_at, state FROM {s}.{e} "
            "WHERE notification_id > %s AND (%s::timestamptz IS NULL OR recorded_at <= %s) "
            "ORDER BY notification_id LIMIT %s"
        ).format(s=schema, e=events)
        self._select_stream_rows = SQL(
            "SELECT notification_id, recorded_at, state FROM {s}.{e} "
            "WHERE originator_id = %s ORDER BY originator_version"
        ).format(s=schema, e=events)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        insert = inspect.unwrap(PostgresApplicationRecorder.insert_events)  # without its retry
        result: Sequence[int] | None = _retried(lambda: insert(self, stored_events, **kwargs))
        return result

    def max_notification_id(self) -> int | None:
        select = inspect.unwrap(PostgresApplicationRecorder.max_notification_id)
        result: int | None = _retried(lambda: select(self))
        return result

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        types: list[StreamType] = kwargs.get("stream_types") or []
        if types:
            # Before the events, in the same pipeline: it cannot fail (ON CONFLICT DO NOTHING),
            # and the events' statement then comes last, whose rows the library fetches.
            columns = [list(c) for c in zip(*types, strict=True)]
            curs.connection.cursor().execute(self._insert_types, columns, prepare=True)
        ids = [s.originator_id for s in stored_events]
        versions = [s.originator_version for s in stored_events]
        before = predecessors(stored_events)
        events: list[Any] = [
            ids, versions, [s.topic for s in stored_events], [s.state for s in stored_events],
        ]  # fmt: skip
        if before:
            events += [[o for o, _ in before], [v for _, v in before], len(before)]
        event_ids: list[str] = kwargs.get("event_ids") or []
        if event_ids:
            statement = self._insert_with_ids[bool(before)]
            curs.execute(statement, [*events, event_ids, ids, versions], prepare=True)
        else:
            statement = self._insert_guarded if before else self.insert_events_statement
            curs.execute(statement, events, prepare=True)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        rows = curs.fetchall()
        if len(rows) != len(stored_events):
            raise IntegrityError("an event before the first one appended to a stream is missing")
        stamps: list[datetime] | None = kwargs.get("stamps")
        if stamps is not None:
            # Replaced, not extended: a try whose COMMIT failed may have filled it already.
            stamps[:] = [r["recorded_at"] for r in rows]
        return [r["notification_id"] for r in rows]

    def _rows(
        self, query: Any, params: Sequence[Any], *, prepare: bool = True
    ) -> list[dict[str, Any]]:
        def select() -> list[dict[str, Any]]:
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                curs.execute(query, params, prepare=prepare)
                return curs.fetchall()

        return _retried(select)

    def lookup(self, event_ids: list[str]) -> list[IndexRow]:
        if not event_ids:
            return []
        rows = self._rows(self._lookup, [event_ids], prepare=False)  # see below
        return [_index_row(r) for r in rows]

    def select_streams(self, originator_ids: list[UUID]) -> list[StoredEvent]:
        if not originator_ids:
            return []
        rows = self._rows(self._select_streams, [originator_ids], prepare=False)
        return [_stored_event(r) for r in rows]

    def select_rows(self, after: int, limit: int, until: datetime | None = None) -> list[StoredRow]:
        return [
            StoredRow(r["notification_id"], r["recorded_at"], bytes(r["state"]))
            for r in self._rows(self._select_rows, [after, until, until, limit])
        ]

    def select_stream_rows(self, originator_id: UUID) -> list[StoredRow]:
        return [
            StoredRow(r["notification_id"], r["recorded_at"], bytes(r["state"]))
            for r in self._rows(self._select_stream_rows, [originator_id])
        ]

    def select_streams_rows(self, originator_ids: list[UUID]) -> dict[UUID, list[StoredRow]]:
        found: dict[UUID, list[StoredRow]] = {o: [] for o in originator_ids}
        rows = self._rows(
            SQL(
                "SELECT originator_id, notification_id, recorded_at, state FROM {s}.{e} "
                "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
            ).format(s=Identifier(self.datastore.schema), e=Identifier(self.events_table_name)),
            [originator_ids],
            prepare=False,  # a generic plan for an array parameter turns slow as tables grow
        )
        for r in rows:
            found[r["originator_id"]].append(
                StoredRow(r["notification_id"], r["recorded_at"], bytes(r["state"]))
            )
        return found

    def streams_with(self, types: list[str]) -> list[tuple[str, str]]:
        rows = self._rows(
            SQL(
                "SELECT DISTINCT stream_type, stream_id FROM {s}.stream_types "
                "WHERE type = ANY(%s) ORDER BY stream_type, stream_id"
            ).format(s=Identifier(self.datastore.schema)),
            [types],
        )
        return [(r["stream_type"], r["stream_id"]) for r in rows]

    def position_at(self, until: datetime) -> int:
        rows = self._rows(
            SQL(
                "SELECT notification_id FROM {s}.{e} WHERE recorded_at <= %s "
                "ORDER BY recorded_at DESC, notification_id DESC LIMIT 1"
            ).format(s=Identifier(self.datastore.schema), e=Identifier(self.events_table_name)),
            [until],
        )
        return int(rows[0]["notification_id"]) if rows else 0

    def check_durability(self) -> None:
        """Refuse a server that acknowledges commits it may not keep."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute("SHOW fsync")
            row = curs.fetchone()
        if row is not None and str(next(iter(row.values()))).lower() == "off":
            raise DurabilityError(
                "PostgreSQL runs with fsync=off: committed events could be lost on a crash. "
                "Turn fsync on before storing an audit ledger there."
            )


class LedgerPostgresFactory(PostgresFactory):
    application_recorder_class = LedgerPostgresRecorder
