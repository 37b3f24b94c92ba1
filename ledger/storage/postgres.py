"""PostgreSQL back-end: the library's recorder (table lock, no DB functions) plus the index."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import (
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from ledger.storage.rows import IndexInsert, IndexRow, StoredRow

EVENTS_TABLE = "ledger_events"


class DurabilityError(RuntimeError):
    """The database would not keep what it acknowledges."""


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    """Stores events and the `event_id` index in one transaction; `recorded_at` is stamped by
    the column default `clock_timestamp()`, evaluated under the recorder's table lock."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = EVENTS_TABLE
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        events = Identifier(events_table_name)
        self._insert_index = SQL(
            "INSERT INTO {s}.event_index (event_id, originator_id, originator_version, "
            "stream_type, stream_id, type, digest, hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        ).format(s=schema)
        self._lookup = SQL(
            "SELECT i.event_id::text, i.digest, i.stream_type, i.stream_id, "
            "i.originator_version, e.notification_id, e.recorded_at, i.hash "
            "FROM {s}.event_index i JOIN {s}.{e} e ON e.originator_id = i.originator_id "
            "AND e.originator_version = i.originator_version "
            "WHERE i.event_id = ANY(%s::uuid[])"
        ).format(s=schema, e=events)
        self._select_streams = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {s}.{e} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
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

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        rows: list[IndexInsert] = kwargs.get("index_rows") or []
        if rows:
            curs.executemany(self._insert_index, rows)

    def _rows(self, query: Any, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params, prepare=True)
            return curs.fetchall()

    def lookup(self, event_ids: list[str]) -> list[IndexRow]:
        if not event_ids:
            return []
        return [IndexRow(*r.values()) for r in self._rows(self._lookup, [event_ids])]

    def select_streams(self, originator_ids: list[UUID]) -> list[StoredEvent]:
        if not originator_ids:
            return []
        return [
            StoredEvent(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"]))
            for r in self._rows(self._select_streams, [originator_ids])
        ]

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
