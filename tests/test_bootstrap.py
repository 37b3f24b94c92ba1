"""The composition root: every entry point gets its parts from `ledger.bootstrap`, on one clock,
with the settings' waits, and none writes to a database that would lose what it commits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger import bootstrap
from ledger.cli import app
from ledger.settings import Settings
from ledger.storage.database import Database, DurabilityError
from ledger.storage.sqlite import LedgerSQLiteRecorder
from tests.conftest import FrozenClock, envelope


def test_the_settings_waits_reach_the_ledger_and_its_read_models(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/ledger.sqlite",
        append_wait_seconds=7.5,
        read_wait_seconds=2.5,
    )
    parts = bootstrap.build(settings)
    try:
        assert parts.ledger.append_wait == 7.5
        assert parts.projections.read_wait == 2.5
    finally:
        parts.close()


def test_every_part_tells_the_time_by_the_clock_it_was_built_with(tmp_path: Path) -> None:
    clock = FrozenClock()
    database = Database.from_url(f"sqlite:///{tmp_path}/ledger.sqlite")
    parts = bootstrap.build(Settings(), clock=clock, database=database)
    try:
        assert parts.clock() == clock.now
        assert parts.ledger.clock() == clock.now
        assert parts.projections.ledger is parts.ledger
    finally:
        parts.close()


def _refuse(self: LedgerSQLiteRecorder) -> None:
    raise DurabilityError("this database runs with fsync=off")


@pytest.mark.parametrize(
    "command",
    [
        ["import", "events.jsonl"],
        ["demo"],
        ["sla", "tick"],
        ["keys", "create", "--role", "auditor", "--name", "audit-1"],
        ["projections", "rebuild"],
        ["replay", "complaint", "C-1"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_no_command_writes_to_a_database_that_would_lose_what_it_commits(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.sqlite"
    (tmp_path / "events.jsonl").write_text(json.dumps(envelope()) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(LedgerSQLiteRecorder, "check_durability", _refuse)
    result = CliRunner().invoke(app, command, env={"LEDGER_DATABASE_URL": url, "COLUMNS": "300"})
    assert result.exit_code == 1, result.output
    assert "cannot open the ledger: this database runs with fsync=off" in result.output
    monkeypatch.undo()
    parts = bootstrap.build(Settings(database_url=url))
    try:
        assert parts.ledger.last_position() == 0
        assert parts.keys.is_empty()
    finally:
        parts.close()


def test_a_postgresql_ledger_is_open_once_its_pool_holds_its_connections(pg_schema: str) -> None:
    """No pool worker is still connecting after the ledger opens: the workers draw on the
    process's `random` (for jitter), which made a property test's data generation flaky."""
    from tests.conftest import pg_database

    ledger = bootstrap.open_ledger(Settings(), database=pg_database(pg_schema), pool_size=4)
    try:
        stats = ledger.store.datastore.pool.get_stats()  # type: ignore[attr-defined]
        assert (stats["pool_size"], stats["pool_available"]) == (4, 4)  # none on its way
    finally:
        ledger.close()
