"""Nothing stored is ever changed: the database itself refuses, even for the table owner."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from pydantic import TypeAdapter

from ledger.application import Ledger
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.storage.database import Database
from tests.conftest import _admin_conninfo, envelope

STATEMENTS = {
    "ledger_events": [
        "UPDATE ledger_events SET topic = topic",
        "DELETE FROM ledger_events",
    ],
    "event_ids": [
        "UPDATE event_ids SET notification_id = notification_id + 1",
        "DELETE FROM event_ids",
    ],
    "stream_types": [
        "UPDATE stream_types SET type = 'x'",
        "DELETE FROM stream_types",
    ],
    "api_keys": [
        "UPDATE api_keys SET role = 'admin'",
        "DELETE FROM api_keys",
    ],
}


@contextmanager
def owner_connection(database: Database) -> Iterator[Any]:
    """A connection as the user that ran the migrations and owns the tables."""
    if database.kind == "sqlite":
        conn = sqlite3.connect(database.path, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()
    else:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f"SET search_path TO {database.schema}")
            yield conn


def refused(conn: Any, sql: str) -> bool:
    try:
        conn.execute(sql)
    except (sqlite3.DatabaseError, psycopg.Error):
        return True
    return False


def test_events_their_index_and_keys_refuse_update_and_delete_even_for_the_owner(
    ledger: Ledger, database: Database, keys: Any, clock: Any
) -> None:
    adapter: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)
    ledger.append([adapter.validate_python(envelope())], source="test")
    keys.create("k", "admin", frozenset(), clock())
    with owner_connection(database) as conn:
        for table, statements in STATEMENTS.items():
            for sql in statements:
                assert refused(conn, sql), f"{table}: {sql} went through"
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 1


def test_postgresql_refuses_truncate_of_events_index_and_keys_even_for_the_owner(
    database: Database,
) -> None:
    if database.kind != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with owner_connection(database) as conn:
        for table in ("ledger_events", "event_ids", "stream_types", "api_keys"):
            assert refused(conn, f"TRUNCATE {table}"), table
            assert refused(conn, f"TRUNCATE {table} CASCADE"), table


def test_a_key_can_be_revoked_once_and_nothing_else(
    database: Database, keys: Any, clock: Any
) -> None:
    keys.create("k", "hr", frozenset(), clock())
    with owner_connection(database) as conn:
        assert refused(conn, "UPDATE api_keys SET key_hash = 'x', revoked_at = created_at")
    assert keys.revoke("k", clock())
    assert not keys.revoke("k", clock())
    with owner_connection(database) as conn:
        assert refused(conn, "UPDATE api_keys SET revoked_at = NULL")
