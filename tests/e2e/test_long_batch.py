"""An integrator appending a long batch leaves every other user alone (the short form of issue
11's acceptance), on a real `ledger serve`: while one key appends LONG_BATCH inspections to one
batch in appends of 500, another key's single appends all get 201 quickly, `GET /v1/sla`
answers 200 (or an honest 503 read-model-behind, never a 500), and the SLA watcher's passes
succeed and raise the escalation that falls due."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger import bootstrap
from ledger.settings import Settings
from ledger.watcher import tick
from tests.conftest import FrozenClock, bearer, envelope
from tests.support.served import serving
from tests.support.shifted import SHIFT_VARIABLE

# The loops around the long batch pace themselves with timed waits, which never time out under
# faketime (the shifted runs of tests/support/shifted.py): a test of load, not of dates.
pytestmark = pytest.mark.skipif(
    SHIFT_VARIABLE in os.environ, reason="timed waits do not time out under faketime"
)
# Inspections the integrator appends to its batch, 500 to an append (the 10,000 events to
# one batch). The served read models count them in the background while the test runs; the
# appends, reads and watcher around them must not notice.
LONG_BATCH = 10_000
APPEND = 500
OTHER_APPENDS = 5  # at least, while the long batch goes in: they interleave rather than wait
P99_SECONDS = 1.0  # generous: the machine is shared


@pytest.fixture
def parts(database_url: str, clock: FrozenClock) -> Iterator[bootstrap.Parts]:
    """Another process on the served database: it makes the keys and runs `ledger sla tick`'s
    pass, as an operator's cron job would."""
    parts = bootstrap.build(Settings(database_url=database_url), clock=clock, pool_size=4)
    try:
        yield parts
    finally:
        parts.close()


@pytest.fixture
def served(database_url: str, parts: bootstrap.Parts, tmp_path: Path) -> Iterator[str]:
    """A `ledger serve` on the database, with its watcher ticking every second: its base URL."""
    log = tmp_path / "serve.log"
    env = {**os.environ, "LEDGER_DATABASE_URL": database_url, "LEDGER_SLA_TICK_SECONDS": "1"}
    with serving(env, log) as url:
        yield url
    assert "Traceback" not in log.read_text(), log.read_text()
    assert "SLA watcher pass failed" not in log.read_text(), log.read_text()


class Loop(threading.Thread):
    """Calls `step` until told to stop, keeping what each call gave and how long it took."""

    def __init__(self, step: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.step = step
        self.results: list[tuple[float, Any]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            began = time.monotonic()
            try:
                result = self.step()
            except Exception as e:  # kept, and asserted on
                result = e
            self.results.append((time.monotonic() - began, result))
            self.stopped.wait(0.05)


def honest(read: Any) -> bool:
    """An answer of the SLA board: 200, or a 503 that says its read model is behind."""
    if not isinstance(read, httpx.Response):
        return False
    behind = read.status_code == 503 and read.json()["type"].endswith("/read-model-behind")
    return read.status_code == 200 or behind


def p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def test_a_long_batch_from_one_integrator_leaves_other_appends_reads_and_the_watcher_alone(
    served: str, parts: bootstrap.Parts, clock: FrozenClock
) -> None:
    admin, _ = parts.keys.create("ops", "admin", frozenset(), clock())
    mes, _ = parts.keys.create("mes", "integrator", frozenset({"production"}), clock())
    quality, _ = parts.keys.create("lab", "integrator", frozenset({"quality"}), clock())

    def at(hours: float) -> str:
        return (clock.now - timedelta(hours=hours)).isoformat()

    with httpx.Client(base_url=served, timeout=60) as http:

        def post(key: str, *bodies: dict[str, Any]) -> httpx.Response:
            return http.post("/v1/events", json={"events": list(bodies)}, headers=bearer(key))

        # a complaint whose investigation was due long ago: the watcher owes it an escalation
        setup = [
            envelope("complaint.filed", stream_id="C-LATE", department="sales",
                     occurred_at=at(100)),
            envelope("notification.sent", stream_id="C-LATE", stream_type="complaint",
                     department="quality", occurred_at=at(90),
                     data={"to_department": "production", "action": "investigate"}),
        ]  # fmt: skip
        assert post(admin, *setup).status_code == 201
        assert post(mes, envelope(stream_id="B-LONG")).status_code == 201
        others = iter(range(1_000_000))

        def other_append() -> int:
            n = next(others)
            if n % 2:  # the lab's inspection of the same batch, or a new batch of the admin's
                final = {"stage": "final", "sample_size": 5, "defects": 0, "result": "pass"}
                body = envelope("inspection.recorded", stream_id="B-LONG", department="quality",
                                data=final)  # fmt: skip
                return post(quality, body).status_code
            return post(admin, envelope(stream_id=f"B-O-{n}")).status_code

        def sla() -> httpx.Response:
            return http.get("/v1/sla", headers=bearer(admin))

        loops = {
            "append": Loop(other_append),
            "sla": Loop(sla),
            "watcher": Loop(lambda: tick(parts.projections, clock.now)),
        }
        for loop in loops.values():
            loop.start()
        long = [
            post(mes, *(envelope("inspection.recorded", stream_id="B-LONG", occurred_at=at(1))
                        for _ in range(APPEND)))
            for _ in range(LONG_BATCH // APPEND)
        ]  # fmt: skip
        for loop in loops.values():
            loop.stopped.set()
        for loop in loops.values():
            loop.join(timeout=60)
        assert [r.status_code for r in long] == [201] * (LONG_BATCH // APPEND)

        appends = loops["append"].results
        assert len(appends) >= OTHER_APPENDS, appends
        assert {status for _, status in appends} == {201}, appends
        assert p99([took for took, _ in appends]) < P99_SECONDS, sorted(t for t, _ in appends)

        reads = [r for _, r in loops["sla"].results]
        assert reads and all(honest(r) for r in reads), [getattr(r, "text", r) for r in reads]
        assert any(r.status_code == 200 for r in reads)

        passes = [result for _, result in loops["watcher"].results]
        assert passes and all(isinstance(p, int) for p in passes), passes
        (item,) = [i for i in sla().json()["items"] if i["stream"]["id"] == "C-LATE"]
        assert item["escalated"] is True
