"""Every behavioural contract runs once on SQLite and once on PostgreSQL.

PostgreSQL tests get a schema of their own in LEDGER_TEST_POSTGRES_URL's database and drop it
afterwards. Outside CI an unreachable PostgreSQL skips them loudly; with CI=true it fails them.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from ledger import bootstrap
from ledger.api.app import create_app
from ledger.application import Ledger
from ledger.settings import Settings
from ledger.storage.database import Database
from ledger.storage.keys import KeyStore
from ledger.storage.migrate import migrate

POSTGRES_URL = os.environ.get("LEDGER_TEST_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _admin_conninfo() -> str:
    db = Database.from_url(POSTGRES_URL)
    return f"host={db.host} port={db.port} user={db.user} dbname={db.name} password={db.password}"


_pg_checked: list[str | None] = []


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None."""
    if not _pg_checked:
        try:
            with psycopg.connect(_admin_conninfo(), connect_timeout=3):
                _pg_checked.append(None)
        except psycopg.Error as e:
            _pg_checked.append(str(e).strip())
    return _pg_checked[0]


def require_postgres() -> None:
    reason = postgres_unreachable()
    if reason is None:
        return
    message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {reason}"
    if IN_CI:
        pytest.fail("CI requires PostgreSQL. " + message)
    pytest.skip("SKIPPING POSTGRESQL TESTS — " + message)


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema, dropped afterwards."""
    require_postgres()
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


def pg_database(schema: str) -> Database:
    return Database.from_url(f"{POSTGRES_URL.split('?')[0]}?schema={schema}")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        db = Database.from_url(f"sqlite:///{tmp_path}/ledger.sqlite")
    else:
        schema = request.getfixturevalue("pg_schema")
        db = pg_database(schema)
    migrate(db)
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """LEDGER_DATABASE_URL of an empty database of each kind, for a `ledger` subprocess (which
    migrates it itself)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.sqlite"
    schema = request.getfixturevalue("pg_schema")
    return f"{POSTGRES_URL.split('?')[0]}?schema={schema}"


class FrozenClock:
    """The ledger's clock, under the test's control.

    It starts at the real time (to the second) because the database stamps `recorded_at` with
    the real one: a clock fixed to a calendar date would drift away from what is recorded as the
    real date moves on, and a test would pass today and fail next week. Tests that need a time
    derive it from `now`; `tests/support/shifted.py` runs the suite under `faketime` to prove
    that none depends on the date.
    """

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def checkpoint_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own checkpoint signing key (never ./var of the checkout), also for the
    `ledger` commands it runs."""
    path = tmp_path / "checkpoint.key"
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY_FILE", str(path))
    return path


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def parts(database: Database, clock: FrozenClock) -> Iterator[bootstrap.Parts]:
    """The ledger, its read models and its keys, built by the composition root on the clock."""
    parts = bootstrap.build(Settings(), clock=clock, database=database, pool_size=4)
    try:
        yield parts
    finally:
        parts.close()


@pytest.fixture
def ledger(parts: bootstrap.Parts) -> Ledger:
    return parts.ledger


ADMIN_KEY_NAME = "test-admin"


@pytest.fixture
def keys(parts: bootstrap.Parts) -> KeyStore:
    """The ledger's API keys."""
    return parts.keys


@pytest.fixture
def make_key(keys: KeyStore, clock: FrozenClock) -> Callable[..., str]:
    """`make_key(role, departments=(), name=None)` stores a key and returns it."""
    made = itertools.count(1)

    def make(role: str = "admin", departments: Iterable[str] = (), name: str | None = None) -> str:
        key, _ = keys.create(name or f"{role}-{next(made)}", role, frozenset(departments), clock())
        return key

    return make


def bearer(key: str) -> dict[str, str]:
    """The header that authenticates a request with `key`."""
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(ledger: Ledger, make_key: Callable[..., str]) -> Iterator[TestClient]:
    """A client of the API that sends an admin key (named ADMIN_KEY_NAME) with every request;
    pass `headers=bearer(make_key("hr"))` to a request to call with another key."""
    app = create_app(Settings(database_url="sqlite:///unused"), ledger=ledger)
    headers = bearer(make_key("admin", name=ADMIN_KEY_NAME))
    with TestClient(app, raise_server_exceptions=False, headers=headers) as c:
        yield c


def envelope(
    event_type: str = "batch.registered",
    stream_id: str = "B-2026-0142",
    data: dict[str, Any] | None = None,
    *,
    stream_type: str | None = None,
    department: str = "production",
    occurred_at: str = "2026-11-02T08:15:00+08:00",
    **extra: Any,
) -> dict[str, Any]:
    """A valid envelope with sensible defaults per type."""
    defaults: dict[str, dict[str, Any]] = {
        "batch.registered": {"kind": "production", "product": "welded frame", "quantity": 500},
        "inspection.recorded": {
            "stage": "final",
            "sample_size": 50,
            "defects": 0,
            "result": "pass",
        },
        "rework.recorded": {"units": 3, "scrapped": 1},
        "complaint.filed": {
            "customer": "ACME",
            "batch_ids": ["B-2026-0142"],
            "description": "weld cracks",
            "severity": "major",
        },
        "complaint.closed": {"customer_satisfied": True},
        "complaint.reopened": {"reason": "cracks again"},
        "investigation.reported": {"findings": "operator not qualified"},
        "shipment.recorded": {"customer": "ACME", "quantity": 500, "delivery_id": "D-1"},
        "target.set": {
            "period": "2026",
            "level": "enterprise",
            "kpi": "defect_rate",
            "direction": "at_most",
            "target": 0.02,
        },
    }
    if stream_type is None:
        stream_type = {
            "complaint.filed": "complaint",
            "complaint.closed": "complaint",
            "complaint.reopened": "complaint",
            "target.set": "plan",
        }.get(event_type, "batch")
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "stream": {"type": stream_type, "id": stream_id},
        "occurred_at": occurred_at,
        "actor": {"id": "E1024", "name": "王芳", "department": department},
        "data": data if data is not None else defaults[event_type],
    }
    body.update(extra)
    return body


@pytest.fixture
def make_envelope() -> Callable[..., dict[str, Any]]:
    return envelope
