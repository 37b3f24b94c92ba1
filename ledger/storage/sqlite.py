"""SQLite back-end: the library's recorder, with durable, cross-process-safe writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteTrackingRecorder,
    SQLiteTransaction,
)
from eventsourcing.utils import Environment, EnvType

from ledger.domain.time import format_time
from ledger.storage.rows import IndexRow, StoredRow, StreamType, predecessors

EVENTS_TABLE = "ledger_events"

# Event ids of one lookup query (see `_lookup`).
LOOKUP_CHUNK = 1000


class _ImmediateTransaction(SQLiteTransaction):
    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        # A deferred BEGIN that later writes fails at once under another process's
        # write lock ("database is locked"); IMMEDIATE waits for the busy timeout instead.
        try:
            cursor.execute("BEGIN IMMEDIATE" if self.commit else "BEGIN")
        except sqlite3.OperationalError as e:
            # The library converts its driver's errors on leaving a transaction, not on
            # entering one: the lock still held after the busy timeout would escape raw.
            raise OperationalError(e) from e
        return cursor


class _Connection(SQLiteConnection):
    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[SQLiteCursor]:
        with _ImmediateTransaction(self, commit=commit) as curs, curs:
            yield curs


class _Pool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        try:
            c = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=256,  # statements kept prepared (True meant one)
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        if not self.is_sqlite_memory_mode:
            c.execute("PRAGMA journal_mode=WAL")
            self.is_journal_mode_wal = True
        # The library leaves synchronous at NORMAL, which can lose the last commits on power loss.
        c.execute("PRAGMA synchronous=FULL")
        c.execute("PRAGMA foreign_keys=ON")
        c.row_factory = sqlite3.Row
        return _Connection(sqlite_conn=c, max_age=self.max_age)


class _Datastore(SQLiteDatastore):
    def __init__(self, db_name: str, **kwargs: Any) -> None:
        super().__init__(db_name, **kwargs)
        self.pool.close()
        self.pool = _Pool(db_name=db_name, lock_timeout=kwargs.get("lock_timeout"))


def _parse_stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    """Stores events, their `recorded_at` and the `event_id` index in one transaction."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = EVENTS_TABLE):
        super().__init__(datastore, events_table_name)
        t = events_table_name
        self.select_max_notification_id_statement = (
            f"SELECT MAX(notification_id) FROM {events_table_name}"
        )
        self.insert_events_statement = (
            f"INSERT INTO {t} (originator_id, originator_version, topic, state, recorded_at) "
            "VALUES (?, ?, ?, ?, ?)"
        )

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # BEGIN IMMEDIATE makes this the only writer. One query reads what the insert needs:
        # whether each stream's event before its first one here is stored (a version after a
        # gap is never written, whatever the writer believed); the last position and the
        # AUTOINCREMENT counter, from which SQLite numbers the new rows (the next after the
        # larger of the two, consecutively); and the last recorded_at. recorded_at is stamped
        # here, under the lock, as UTC text with microseconds, one stamp for the whole commit;
        # max() with the previous row keeps it non-decreasing along notification_id even if
        # the wall clock steps back.
        t = self.events_table_name
        before = predecessors(stored_events)
        found, params = "0", []
        if before:
            found = (
                f"(WITH p (o, v) AS (VALUES {', '.join(['(?, ?)'] * len(before))}) "
                f"SELECT count(*) FROM p JOIN {t} g "
                "ON g.originator_id = p.o AND g.originator_version = p.v)"
            )
            params = [x for o, v in before for x in (o.hex if isinstance(o, UUID) else o, v)]
        c.execute(
            f"SELECT {found}, (SELECT max(notification_id) FROM {t}), "
            f"(SELECT seq FROM sqlite_sequence WHERE name = '{t}'), "
            f"(SELECT recorded_at FROM {t} ORDER BY notification_id DESC LIMIT 1)",
            params,
        )
        stored, top, counter, last = c.fetchone()
        if stored != len(before):
            raise IntegrityError("an event before the first one appended to a stream is missing")
        start = max(top or 0, counter or 0)
        stamp = max(format_time(datetime.now(UTC)), last or "")
        c.executemany(
            self.insert_events_statement,
            [
                (s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id,
                 s.originator_version, s.topic, s.state, stamp)
                for s in stored_events
            ],
        )  # fmt: skip
        positions = list(range(start + 1, start + 1 + len(stored_events)))
        c.execute(self.select_max_notification_id_statement)  # the numbering, checked
        if positions and c.fetchone()[0] != positions[-1]:
            raise RuntimeError("the positions of the inserted events are not the expected ones")
        event_ids: list[str] = kwargs.get("event_ids") or []
        if event_ids:
            c.executemany(
                "INSERT INTO event_ids (event_id, notification_id) VALUES (?, ?)",
                zip(event_ids, positions, strict=True),
            )
        types: list[StreamType] = kwargs.get("stream_types") or []
        if types:
            c.executemany(
                "INSERT OR IGNORE INTO stream_types (type, stream_type, stream_id) VALUES (?,?,?)",
                types,
            )
        stamps: list[datetime] | None = kwargs.get("stamps")
        if stamps is not None:
            stamps.extend([datetime.fromisoformat(stamp)] * len(stored_events))
        return positions

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        # The library selects "rowid, *", which an INTEGER PRIMARY KEY alias renames.
        op = ">=" if inclusive_of_start else ">"
        sql = (
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE notification_id {op} ?"
        )
        params: list[Any] = [start or 0]
        if stop is not None:
            sql += " AND notification_id <= ?"
            params.append(stop)
        if topics:
            sql += f" AND topic IN ({','.join('?' * len(topics))})"
            params.extend(topics)
        sql += " ORDER BY notification_id LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [
                Notification(
                    id=r[0],
                    originator_id=self.convert_originator_id(r[1]),
                    originator_version=r[2],
                    topic=r[3],
                    state=r[4],
                )
                for r in c.fetchall()
            ]

    def lookup(self, event_ids: list[str]) -> list[IndexRow]:
        if not event_ids:
            return []
        with self.datastore.transaction(commit=False) as c:
            return self._lookup(c, event_ids)

    def _lookup(self, c: SQLiteCursor, event_ids: list[str]) -> list[IndexRow]:
        """In chunks of LOOKUP_CHUNK ids: SQLite builds allow as few as 32,766 variables."""
        found: list[IndexRow] = []
        for n in range(0, len(event_ids), LOOKUP_CHUNK):
            chunk = event_ids[n : n + LOOKUP_CHUNK]
            c.execute(
                "SELECT i.event_id, e.notification_id, e.recorded_at, e.state FROM event_ids i "
                f"JOIN {self.events_table_name} e ON e.notification_id = i.notification_id "
                f"WHERE i.event_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found += [IndexRow(r[0], r[1], _parse_stamp(r[2]), r[3]) for r in c.fetchall()]
        return found

    def select_streams(self, originator_ids: list[UUID]) -> list[StoredEvent]:
        if not originator_ids:
            return []
        with self.datastore.transaction(commit=False) as c:
            return self._select_streams(c, originator_ids)

    def _select_streams(self, c: SQLiteCursor, originator_ids: list[UUID]) -> list[StoredEvent]:
        marks = ",".join("?" * len(originator_ids))
        c.execute(
            "SELECT originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE originator_id IN ({marks}) "
            "ORDER BY originator_id, originator_version",
            [o.hex for o in originator_ids],
        )
        return [StoredEvent(UUID(r[0]), r[1], r[2], r[3]) for r in c.fetchall()]

    def select_rows(self, after: int, limit: int, until: datetime | None = None) -> list[StoredRow]:
        sql = (
            f"SELECT notification_id, recorded_at, state FROM {self.events_table_name} "
            "WHERE notification_id > ?"
        )
        params: list[Any] = [after]
        if until is not None:
            sql += " AND recorded_at <= ?"
            params.append(format_time(until))
        sql += " ORDER BY notification_id LIMIT ?"
        params.append(limit)
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [StoredRow(r[0], _parse_stamp(r[1]), r[2]) for r in c.fetchall()]

    def select_stream_rows(self, originator_id: UUID) -> list[StoredRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT notification_id, recorded_at, state FROM {self.events_table_name} "
                "WHERE originator_id = ? ORDER BY originator_version",
                [originator_id.hex],
            )
            return [StoredRow(r[0], _parse_stamp(r[1]), r[2]) for r in c.fetchall()]

    def select_streams_rows(self, originator_ids: list[UUID]) -> dict[UUID, list[StoredRow]]:
        found: dict[UUID, list[StoredRow]] = {o: [] for o in originator_ids}
        for i in range(0, len(originator_ids), 500):
            chunk = [o.hex for o in originator_ids[i : i + 500]]
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    "SELECT originator_id, notification_id, recorded_at, state "
                    f"FROM {self.events_table_name} WHERE originator_id IN "
                    f"({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version",
                    chunk,
                )
                for r in c.fetchall():
                    found[UUID(r[0])].append(StoredRow(r[1], _parse_stamp(r[2]), r[3]))
        return found

    def streams_with(self, types: list[str]) -> list[tuple[str, str]]:
        marks = ",".join("?" * len(types))
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT DISTINCT stream_type, stream_id FROM stream_types "
                f"WHERE type IN ({marks}) ORDER BY stream_type, stream_id",
                types,
            )
            return [(r[0], r[1]) for r in c.fetchall()]

    def position_at(self, until: datetime) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT notification_id FROM {self.events_table_name} WHERE recorded_at <= ? "
                "ORDER BY recorded_at DESC, notification_id DESC LIMIT 1",
                [format_time(until)],
            )
            row = c.fetchone()
            return int(row[0]) if row else 0

    def check_durability(self) -> None:
        """SQLite durability is set per connection (WAL, synchronous=FULL): nothing to refuse."""


class LedgerSQLiteFactory(SQLiteFactory):
    """The library's SQLite factory with the ledger's datastore and recorder."""

    application_recorder_class = LedgerSQLiteRecorder
    tracking_recorder_class = SQLiteTrackingRecorder

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        old = self.datastore
        self.datastore = _Datastore(
            old.pool.db_name,
            lock_timeout=old.pool.lock_timeout,
            single_row_tracking=old.single_row_tracking,
            originator_id_type=old.originator_id_type,
        )
        old.close()
