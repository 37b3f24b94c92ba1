"""Another process holding SQLite's write lock: reads that need a read model to catch up answer
503 with Retry-After while it holds it, never 500, and work again once it lets go."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import ConnectionUnavailableError
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ledger import bootstrap
from ledger.api.app import create_app
from ledger.application import Ledger
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.readmodels.sla import query as sla_query
from ledger.settings import Settings
from ledger.storage.database import Database
from ledger.storage.keys import KeyStore
from ledger.storage.migrate import migrate
from tests.conftest import FrozenClock, bearer, envelope

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)
LOCK_TIMEOUT = "1"  # seconds the library waits for SQLite's lock (10 when served)


@pytest.fixture
def sqlite_client(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Ledger]]:
    database = Database.from_url(f"sqlite:///{tmp_path}/ledger.sqlite")
    migrate(database)
    library_env = Database.library_env

    def short_lock_timeout(self: Database, pool_size: int = 10) -> dict[str, str]:
        return library_env(self, pool_size) | {"SQLITE_LOCK_TIMEOUT": LOCK_TIMEOUT}

    monkeypatch.setattr(Database, "library_env", short_lock_timeout)
    ledger = bootstrap.open_ledger(Settings(), clock=clock, database=database, pool_size=4)
    key, _ = KeyStore.of(ledger.store, "sqlite").create("admin-1", "admin", frozenset(), clock())
    app = create_app(Settings(database_url="sqlite:///unused"), ledger=ledger)
    try:
        with TestClient(app, raise_server_exceptions=False, headers=bearer(key)) as client:
            yield client, ledger
    finally:
        ledger.close()


def test_sla_reads_answer_503_while_another_process_holds_the_write_lock(
    sqlite_client: tuple[TestClient, Ledger],
) -> None:
    client, ledger = sqlite_client
    ledger.append([ADAPTER.validate_python(envelope())], source="test")  # to be counted
    other = sqlite3.connect(ledger.database.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        statuses = []
        for _ in range(3):
            r = client.get("/v1/sla")
            statuses.append(r.status_code)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert int(r.headers["Retry-After"]) >= 1
        other.execute("ROLLBACK")
    finally:
        other.close()
    deadline = time.monotonic() + 10
    while (r := client.get("/v1/sla")).status_code != 200:
        assert time.monotonic() < deadline, r.text
        time.sleep(0.1)
    assert r.json()["position"] == 1


def test_a_connection_timeout_anywhere_in_a_read_is_a_503(
    sqlite_client: tuple[TestClient, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = sqlite_client

    def timed_out(*_: Any, **__: Any) -> Any:
        raise ConnectionUnavailableError("Timed out waiting for return of writer lock")

    monkeypatch.setattr(sla_query, "board_items", timed_out)
    r = client.get("/v1/sla")
    assert r.status_code == 503, r.text
    assert r.json()["type"].endswith("/unavailable")
    assert r.json()["detail"] == "retry shortly"  # the database's own words stay in the log
    assert int(r.headers["Retry-After"]) >= 1


def test_an_append_answers_503_while_another_process_holds_the_write_lock(
    sqlite_client: tuple[TestClient, Ledger],
) -> None:
    client, ledger = sqlite_client
    other = sqlite3.connect(ledger.database.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        r = client.post("/v1/events", json=envelope())
        assert r.status_code == 503, r.text
        assert int(r.headers["Retry-After"]) >= 1
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert client.post("/v1/events", json=envelope()).status_code == 201
