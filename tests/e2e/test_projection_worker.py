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
from tests.support.served import LEDGER, free_port, serving
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


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # ended meanwhile
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = command
    return found


def workers_of(pid: int) -> list[int]:
    return [p for p, command in children(pid).items() if "projections run" in command]


def wait_for_worker(pid: int, other_than: int | None, log: Path) -> int:
    deadline = time.monotonic() + 30
    while True:
        found = [p for p in workers_of(pid) if p != other_than]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no projection worker started:\n{log.read_text()}"
        time.sleep(0.1)


def test_served_on_postgresql_the_catch_up_is_a_worker_process_restarted_and_stopped_with_it(
    parts: bootstrap.Parts, database_url: str, tmp_path: Path, checkpoint_key_file: Path
) -> None:
    """On PostgreSQL `ledger serve` counts in a worker process beside its server (the requests
    then do not share an interpreter lock with the catch-up); one killed is started again, and
    it stops with the server. On SQLite the catch-up stays in the server's process."""
    log = tmp_path / "serve.log"
    port = free_port()
    env = environment(database_url, LEDGER_SLA_TICK_SECONDS="3600")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*LEDGER, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until_counted(parts, append(parts, 40, "first"), log)
        # made on start, its owner's alone (the digest's checkpoints are signed with it)
        assert checkpoint_key_file.stat().st_mode & 0o777 == 0o600
        if database_url.startswith("sqlite"):
            assert workers_of(server.pid) == [], children(server.pid)
            return
        worker = wait_for_worker(server.pid, None, log)
        os.kill(worker, signal.SIGKILL)
        again = wait_for_worker(server.pid, worker, log)
        wait_until_counted(parts, append(parts, 40, "after-kill"), log)
        assert "the projection worker ended (exit -9)" in log.read_text()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        state = Path(f"/proc/{again}/stat").read_text() if Path(f"/proc/{again}").exists() else ""
        assert not state, f"the worker outlived its server: {state}\n{log.read_text()}"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_worker_of_a_killed_server_ends_by_itself(
    parts: bootstrap.Parts, database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("on SQLite the catch-up runs in the server's process")
    log = tmp_path / "serve.log"
    env = environment(database_url, LEDGER_SLA_TICK_SECONDS="3600")
    with log.open("wb") as out:
        server = subprocess.Popen(
            [*LEDGER, "serve", "--port", str(free_port())],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        worker = wait_for_worker(server.pid, None, log)
        server.kill()
        server.wait()
        deadline = time.monotonic() + 30
        while Path(f"/proc/{worker}").exists() and "Z" not in _state(worker):
            assert time.monotonic() < deadline, (
                f"the worker outlived its server:\n{log.read_text()}"
            )
            time.sleep(0.1)
        assert "stopped: sla_board at position" in log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
