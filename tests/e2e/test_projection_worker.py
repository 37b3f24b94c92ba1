"""The read models' catch-up as a process of its own (`ledger projections run`, beside servers
that do not catch up) and in the background of `ledger serve`: each keeps the read models
caught up with events other processes append, without a read asking, and stops on SIGINT or
SIGTERM after the page it is writing, exiting 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from ledger import bootstrap
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.settings import Settings
from tests.conftest import FrozenClock, envelope
from tests.support.served import LEDGER, serving
from tests.support.shifted import SHIFT_VARIABLE

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)
# A following catch-up looks for new events after a timed wait, which never times out under
# faketime (the shifted runs of tests/support/shifted.py): a test of polling, not of dates.
pytestmark = pytest.mark.skipif(
    SHIFT_VARIABLE in os.environ, reason="timed waits do not time out under faketime"
)


@pytest.fixture
def parts(database_url: str, clock: FrozenClock) -> Iterator[bootstrap.Parts]:
    """This process's view of the ledger: it appends, and reads where the read models stand."""
    parts = bootstrap.build(Settings(database_url=database_url), clock=clock, pool_size=2)
    try:
        yield parts
    finally:
        parts.close()


def append(parts: bootstrap.Parts, count: int, prefix: str) -> int:
    """`count` new batches, appended by this process; the ledger's last position after them."""
    models = [ADAPTER.validate_python(envelope(stream_id=f"B-{prefix}-{i}")) for i in range(count)]
    parts.ledger.append(models, source="test")
    return parts.ledger.last_position()


def positions(parts: bootstrap.Parts) -> dict[str, int]:
    return {name: r.position for name, r in parts.projections.runners.items()}


def wait_until_counted(parts: bootstrap.Parts, last: int, log: Path | None = None) -> None:
    deadline = time.monotonic() + 60
    while set(positions(parts).values()) != {last}:
        where = f"{positions(parts)}\n{log.read_text() if log else ''}"
        assert time.monotonic() < deadline, f"not counted to {last} in 60 s: {where}"
        time.sleep(0.1)


def environment(database_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "LEDGER_DATABASE_URL": database_url, **extra}


def test_projections_run_once_catches_up_and_exits_0(
    parts: bootstrap.Parts, database_url: str
) -> None:
    last = append(parts, 150, "once")
    done = subprocess.run(
        [*LEDGER, "projections", "run", "--once"],
        env=environment(database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert positions(parts) == dict.fromkeys(parts.projections.runners, last)
    assert f"kpis caught up at position {last}" in done.stderr, done.stderr


def test_projections_run_once_with_a_name_catches_up_that_read_model_alone(
    parts: bootstrap.Parts, database_url: str
) -> None:
    last = append(parts, 20, "one")
    done = subprocess.run(
        [*LEDGER, "projections", "run", "kpis", "--once"],
        env=environment(database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {n: p for n, p in positions(parts).items() if p == last} == {"kpis": last}
    assert re.search(rf"kpis counted {last} event\(s\) in [0-9.]+ s", done.stderr), done.stderr
    unknown = subprocess.run(
        [*LEDGER, "projections", "run", "no-such-model", "--once"],
        env=environment(database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unknown.returncode == 2
    names = ", ".join(parts.projections.runners)
    assert f"no read model 'no-such-model'; there are: {names}" in unknown.stderr


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_projections_run_follows_what_others_append_until_a_signal_and_exits_0(
    parts: bootstrap.Parts, database_url: str, tmp_path: Path, stop: signal.Signals
) -> None:
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [*LEDGER, "projections", "run"],
            env=environment(database_url, LEDGER_PROJECTION_POLL_SECONDS="0.1"),
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_until_counted(parts, append(parts, 50, "first"), log)
        wait_until_counted(parts, append(parts, 50, "then"), log)
        worker.send_signal(stop)
        assert worker.wait(timeout=30) == 0, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "stopped" in log.read_text(), log.read_text()


def test_a_served_ledger_keeps_its_read_models_caught_up_without_being_read(
    parts: bootstrap.Parts, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serving(environment(database_url, LEDGER_SLA_TICK_SECONDS="3600"), log):
        wait_until_counted(parts, append(parts, 80, "served"), log)
