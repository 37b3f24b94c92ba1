"""`ledger import FILE.jsonl` (issue 3, item 6), on SQLite and PostgreSQL.

Bulk append in batches, idempotent (a second run appends nothing and says so), a bad line is
reported with its line number and stops nothing already committed, and a re-run after the fix
completes. The CLI runs on the real clock: occurred_at lies in the past.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from ledger import bootstrap
from ledger.cli import app
from ledger.settings import Settings
from tests.conftest import POSTGRES_URL, envelope

PAST = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
FUTURE = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """LEDGER_DATABASE_URL of an empty database; `ledger import` migrates it itself."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/import.sqlite"
    schema = request.getfixturevalue("pg_schema")
    return f"{POSTGRES_URL.split('?')[0]}?schema={schema}"


@pytest.fixture
def run_import(database_url: str) -> Callable[..., Result]:
    runner = CliRunner()

    def run(path: Path, *options: str) -> Result:
        env = {"LEDGER_DATABASE_URL": database_url, "COLUMNS": "300"}
        return runner.invoke(app, ["import", str(path), *options], env=env)

    return run


@pytest.fixture
def stored(database_url: str) -> Callable[[], list[dict[str, Any]]]:
    """The whole feed of the database, as the API shows it."""

    def read() -> list[dict[str, Any]]:
        ledger = bootstrap.open_ledger(Settings(database_url=database_url), pool_size=1)
        try:
            events: list[dict[str, Any]] = []
            after = 0
            while rows := ledger.feed(after, 1000):
                events += [json.loads(r.json()) for r in rows]
                after = rows[-1].position
            return events
        finally:
            ledger.close()

    return read


def events(n: int) -> list[dict[str, Any]]:
    """n valid envelopes: a few batches, each registered and then inspected."""
    out: list[dict[str, Any]] = []
    streams = [f"B-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    out += [envelope(stream_id=s, occurred_at=PAST) for s in streams]
    for i in range(n - len(streams)):
        data = {"stage": "final", "sample_size": 20, "defects": i % 4, "result": "pass"}
        out.append(
            envelope("inspection.recorded", stream_id=streams[i % 3], data=data, occurred_at=PAST)
        )
    return out


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def text(result: Result) -> str:
    """stdout and stderr with whitespace normalized (rich wraps long lines)."""
    return " ".join((result.stdout + " " + result.stderr).split())


def test_import_appends_every_event_and_a_second_run_appends_nothing(
    tmp_path: Path,
    run_import: Callable[..., Result],
    stored: Callable[[], list[dict[str, Any]]],
) -> None:
    sent = events(25)
    path = write(tmp_path / "events.jsonl", [json.dumps(e, ensure_ascii=False) for e in sent])

    first = run_import(path, "--batch-size", "7")
    assert first.exit_code == 0, text(first)
    assert "appended 25 event(s)" in first.stdout

    after_first = stored()
    assert [e["event_id"] for e in after_first] == [e["event_id"] for e in sent]
    for got, want in zip(after_first, sent, strict=True):
        for field in ("type", "stream", "occurred_at", "actor", "data"):
            assert got[field] == want[field]
        assert got["source"] == "import"

    second = run_import(path, "--batch-size", "7")
    assert second.exit_code == 0, text(second)
    assert "nothing to append" in second.stdout
    assert "25" in second.stdout
    assert stored() == after_first


def test_import_stamps_the_source_it_is_given(
    tmp_path: Path,
    run_import: Callable[..., Result],
    stored: Callable[[], list[dict[str, Any]]],
) -> None:
    path = write(tmp_path / "events.jsonl", [json.dumps(e) for e in events(4)])
    result = run_import(path, "--source", "mes-backfill")
    assert result.exit_code == 0, text(result)
    assert {e["source"] for e in stored()} == {"mes-backfill"}


def unknown_stream() -> str:
    return json.dumps(
        envelope("rework.recorded", stream_id=f"B-never-{uuid.uuid4().hex[:8]}", occurred_at=PAST)
    )


# Each bad line: how to make it, and words the report must contain beside its line number.
BAD_LINES: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "not JSON": (lambda _: '{"event_id": ', ""),
    "wrong type": (
        lambda e: json.dumps({**e, "data": {**e["data"], "sample_size": "20"}}),
        "data.sample_size",
    ),
    "unknown field": (lambda e: json.dumps({**e, "hash": "0" * 64}), "hash"),
    # Refused by the ledger, not by the schema: found only when its batch is appended.
    "future": (lambda e: json.dumps({**e, "occurred_at": FUTURE}), "occurred_at"),
    "stream rule": (lambda _: unknown_stream(), "does not exist yet"),
}


@pytest.mark.parametrize("bad", sorted(BAD_LINES))
def test_a_bad_line_is_reported_with_its_number_and_the_lines_before_it_are_kept(
    tmp_path: Path,
    run_import: Callable[..., Result],
    stored: Callable[[], list[dict[str, Any]]],
    bad: str,
) -> None:
    sent = events(30)
    make_bad, words = BAD_LINES[bad]
    lines = [json.dumps(e, ensure_ascii=False) for e in sent]
    # A blank line first: the report counts lines of the file, not events.
    lines.insert(0, "")
    bad_index = 17  # file line 18; with batches of 10 it sits mid-batch after a full batch
    good_line = lines[bad_index]
    lines[bad_index] = make_bad(json.loads(good_line))
    path = write(tmp_path / "events.jsonl", lines)

    result = run_import(path, "--batch-size", "10")
    assert result.exit_code == 1, text(result)
    report = text(result)
    assert f"line {bad_index + 1}:" in report, report
    assert words in report, report
    assert "near line" not in report, report

    before = [e["event_id"] for e in sent[: bad_index - 1]]
    assert [e["event_id"] for e in stored()] == before, "exactly the lines before it are kept"

    # The same file again: still stops there, and stores nothing twice.
    again = run_import(path, "--batch-size", "10")
    assert again.exit_code == 1
    assert f"line {bad_index + 1}:" in text(again)
    assert [e["event_id"] for e in stored()] == before

    # Fixed, the import completes: the rest is appended once, what was stored is skipped.
    lines[bad_index] = good_line
    write(path, lines)
    fixed = run_import(path, "--batch-size", "10")
    assert fixed.exit_code == 0, text(fixed)
    rest = len(sent) - len(before)
    assert f"appended {rest} event(s)" in fixed.stdout
    assert f"{len(before)} were already stored" in fixed.stdout
    assert [e["event_id"] for e in stored()] == [e["event_id"] for e in sent]


def test_a_bad_line_in_the_first_batch_keeps_the_lines_before_it(
    tmp_path: Path,
    run_import: Callable[..., Result],
    stored: Callable[[], list[dict[str, Any]]],
) -> None:
    """With the default batch size the whole file is one batch: the ledger refuses it whole, and
    the import must still keep the valid lines before the bad one and name the bad one."""
    sent = events(12)
    lines = [json.dumps(e) for e in sent]
    lines[8] = unknown_stream()
    path = write(tmp_path / "events.jsonl", lines)

    result = run_import(path)
    assert result.exit_code == 1
    assert "line 9:" in text(result), text(result)
    assert [e["event_id"] for e in stored()] == [e["event_id"] for e in sent[:8]]


def test_import_of_a_missing_file_fails_cleanly(
    tmp_path: Path, run_import: Callable[..., Result]
) -> None:
    result = run_import(tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert "nope.jsonl" in text(result)
