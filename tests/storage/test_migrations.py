"""A ledger written before a schema change reads and deduplicates the same after it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.utils import get_topic
from pydantic import TypeAdapter

from ledger.application import Ledger
from ledger.domain.aggregates import STREAM_CLASSES
from ledger.domain.chain import GENESIS_HASH, content_digest
from ledger.domain.errors import EventIdConflictError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.domain.stream import seal, stream_uuid
from ledger.storage.database import Database
from ledger.storage.mapper import encode_record
from ledger.storage.migrate import migrate
from tests.conftest import FrozenClock, _admin_conninfo, envelope, pg_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return Database.from_url(f"sqlite:///{tmp_path}/ledger.sqlite")
    return pg_database(request.getfixturevalue("pg_schema"))


def write_as_0006(database: Database, record: dict[str, Any], topic: str) -> None:
    """Store one event the way the ledger did before 0007: with its eight-column index row."""
    stream = record["stream"]
    originator = stream_uuid(stream["type"], stream["id"])
    index = (
        record["event_id"], originator, 1, stream["type"], stream["id"], record["type"],
        content_digest(record), record["hash"],
    )  # fmt: skip
    if database.kind == "sqlite":
        with sqlite3.connect(database.path) as conn:
            conn.execute(
                "INSERT INTO ledger_events (originator_id, originator_version, topic, state, "
                "recorded_at) VALUES (?, 1, ?, ?, '2026-11-26T11:00:00.000000Z')",
                (originator.hex, topic, encode_record(record)),
            )
            conn.execute(
                "INSERT INTO event_index VALUES (?,?,?,?,?,?,?,?)",
                (index[0], originator.hex, *index[2:]),
            )
        return
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {database.schema}")
        conn.execute(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state) "
            "VALUES (%s, 1, %s, %s)",
            (originator, topic, encode_record(record)),
        )
        conn.execute("INSERT INTO event_index VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", index)


def test_events_stored_before_the_slim_index_keep_their_receipts(
    empty_database: Database,
) -> None:
    migrate(empty_database, until="0006.kpi-rows")
    sent = TypeAdapter(Envelope).validate_python(envelope())
    assert isinstance(sent, EnvelopeBase)
    record = seal(sent.to_record("test"), version=1, prev_hash=GENESIS_HASH)
    write_as_0006(empty_database, record, get_topic(STREAM_CLASSES["batch"].Opened))

    assert migrate(empty_database)[0] == "0007.slim-event-index"
    ledger = Ledger(empty_database, clock=FrozenClock(), pool_size=2)
    try:
        again = ledger.append([sent], source="test")
        assert not again.created
        [receipt] = again.receipts
        assert (receipt["event_id"], receipt["position"], receipt["hash"]) == (
            record["event_id"], 1, record["hash"],
        )  # fmt: skip
        assert ledger.streams_with("batch.registered") == [("batch", record["stream"]["id"])]
        changed = sent.model_copy(update={"attributes": {"changed": True}})
        with pytest.raises(EventIdConflictError, match="already stored with other content"):
            ledger.append([changed], source="test")
    finally:
        ledger.close()
