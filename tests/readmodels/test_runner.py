"""The runner that keeps read models caught up: write transactions sized to a time budget, so an
append waits at most one short page of a long catch-up; several processes catching up one read
model end where a rebuild does; a ledger told to follow keeps its read models caught up without
being read; and a read waits only for the position it needs."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ledger import bootstrap
from ledger.application import Ledger
from ledger.domain.errors import ReadModelBehindError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.readmodels.projections import Projections
from ledger.readmodels.runner import PageSize, ProjectionRunner
from ledger.settings import Settings
from ledger.storage.database import Database
from tests.conftest import FrozenClock, envelope
from tests.support.shifted import SHIFT_VARIABLE

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)


def history(clock: FrozenClock, batches: int = 3, inspections: int = 8) -> list[dict[str, Any]]:
    """Batches with inspections and rework, a complaint naming each, an SLA item on each
    complaint (half of them answered): what both stored read models count."""

    def at(hours: float) -> str:
        return (clock.now - timedelta(hours=hours)).isoformat()

    events: list[dict[str, Any]] = []
    for b in range(batches):
        batch, case = f"B-{b}", f"C-{b}"
        events.append(envelope(stream_id=batch, occurred_at=at(200)))
        for i in range(inspections):
            result = "pass" if i % 3 else "fail"
            data = {"stage": "in_process", "sample_size": 10, "defects": i % 3, "result": result}
            events.append(envelope("inspection.recorded", stream_id=batch, data=data,
                                   occurred_at=at(190 - i)))  # fmt: skip
        events.append(envelope("rework.recorded", stream_id=batch, occurred_at=at(150)))
        filed = {"customer": "ACME", "batch_ids": [batch], "description": "cracks",
                 "severity": "major"}  # fmt: skip
        events.append(envelope("complaint.filed", stream_id=case, department="sales",
                               data=filed, occurred_at=at(120)))  # fmt: skip
        events.append(envelope("notification.sent", stream_id=case, stream_type="complaint",
                               department="quality", occurred_at=at(110),
                               data={"to_department": "production",
                                     "action": "investigate"}))  # fmt: skip
        if b % 2:
            events.append(envelope("investigation.reported", stream_id=case,
                                   stream_type="complaint", occurred_at=at(100)))  # fmt: skip
    return events


def append(ledger: Ledger, bodies: list[dict[str, Any]], size: int = 1000) -> None:
    for n in range(0, len(bodies), size):
        ledger.append([ADAPTER.validate_python(b) for b in bodies[n : n + size]], source="test")


def stored(projections: Projections) -> dict[str, list[str]]:
    """Every row of every read-model table (rm_*), in a stable order, with the tracking
    positions: what two ways of building the read models must agree on byte for byte."""
    views = projections.views
    with views.transaction(commit=False) as cursor:
        if views.kind == "sqlite":
            sql = ("SELECT name FROM sqlite_master "
                   "WHERE type = 'table' AND name LIKE 'rm!_%' ESCAPE '!'")  # fmt: skip
            params: list[Any] = []
        else:
            sql = ("SELECT table_name FROM information_schema.tables "
                   "WHERE table_schema = %s AND table_name LIKE 'rm!_%%' ESCAPE '!'")  # fmt: skip
            params = [views.datastore.schema]
        names = sorted(str(r[0]) for r in views.select(cursor, sql, params))
        assert "rm_sla_items" in names and "rm_kpi_rows" in names, names
        tables = {
            name: sorted(
                repr(tuple(r))
                for r in views.select(cursor, f"SELECT * FROM {views.table(name)}", [])
            )
            for name in names
        }
    tables["tracking"] = [f"{n}={r.position}" for n, r in sorted(projections.runners.items())]
    return tables


def rebuilt(projections: Projections) -> dict[str, list[str]]:
    for runner in projections.runners.values():
        runner.rebuild()
    return stored(projections)


@pytest.fixture
def other(database: Database, clock: FrozenClock) -> Iterator[bootstrap.Parts]:
    """A second process on the same database: its own ledger, pool and read-model runners."""
    parts = bootstrap.build(Settings(), clock=clock, database=database, pool_size=4)
    try:
        yield parts
    finally:
        parts.close()


class _OnePage(Exception):
    """Stops a catch-up after its first page."""


def _one_page(done: int, total: int) -> None:
    raise _OnePage


def test_a_page_another_process_counted_part_of_first_is_not_counted_twice(
    parts: bootstrap.Parts, other: bootstrap.Parts, clock: FrozenClock
) -> None:
    append(parts.ledger, history(clock, batches=12, inspections=20))  # 300 events
    mine, theirs = parts.projections, other.projections
    for name, runner in theirs.runners.items():
        runner.pages = PageSize(60.0, first=100, most=1000)  # 1..100, then 101..300
        ahead = mine.runners[name]
        ahead.pages = PageSize(60.0, first=10, most=10)
        gather = runner.projector.gather

        def let_the_other_write_a_page_first(
            facts: Any, ahead: ProjectionRunner = ahead, gather: Any = gather
        ) -> Any:
            if facts[0].position == 101 and ahead.position == 100:
                with pytest.raises(_OnePage):  # it counts 101.., a page shorter than this one
                    ahead.catch_up(progress=_one_page)
            return gather(facts)

        runner.projector.gather = let_the_other_write_a_page_first  # type: ignore[method-assign]
        runner.catch_up()
        assert ahead.position > 100
    assert all(r.position == parts.ledger.last_position() for r in theirs.runners.values())
    counted = stored(theirs)
    assert counted == rebuilt(mine)


def test_two_processes_catching_up_one_read_model_at_once_end_as_a_rebuild(
    parts: bootstrap.Parts, other: bootstrap.Parts, clock: FrozenClock
) -> None:
    append(parts.ledger, history(clock, batches=5))
    for size, projections in ((3, parts.projections), (7, other.projections)):
        for runner in projections.runners.values():
            runner.pages = PageSize(1.0, first=size, most=size)
    threads = [threading.Thread(target=p.catch_up) for p in (parts.projections, other.projections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    last = parts.ledger.last_position()
    assert {
        r.position for p in (parts.projections, other.projections) for r in p.runners.values()
    } == {last}
    assert stored(parts.projections) == rebuilt(other.projections)


def test_a_page_is_sized_so_its_write_stays_within_the_time_budget() -> None:
    pages = PageSize(0.05, first=100, most=1000)
    pages.measured(100, 0.2)  # 2 ms an event: 25 fit
    assert pages.size == 25
    pages.measured(25, 0.01)  # cheaper now: grows, at most doubling
    assert pages.size == 50
    for _ in range(10):
        pages.measured(pages.size, 0.001)
    assert pages.size == 1000  # never more than `most`
    pages.measured(3, 0.001)  # the end of the feed: a short page says nothing
    assert pages.size == 1000
    pages.measured(1000, 60.0)  # one event takes longer than the budget: one at a time
    assert pages.size == 1


def slow_writes(
    runner: ProjectionRunner, seconds_per_event: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make the read model's write transaction cost `seconds_per_event` for every event of a
    page (its tracking write, the last in the transaction, takes that long)."""
    views, track = runner.views, runner.views.track

    def slow_track(cursor: Any, name: str, position: int) -> None:
        before = views.tracking._max_tracking_id(name, cursor) or 0
        time.sleep(seconds_per_event * (position - before))
        track(cursor, name, position)

    monkeypatch.setattr(views, "track", slow_track)


def test_an_append_waits_at_most_one_short_page_of_a_long_catch_up(
    parts: bootstrap.Parts, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    backlog = [envelope(stream_id=f"B-{i:04d}") for i in range(2000)]
    append(parts.ledger, backlog)
    runner = parts.projections.kpis
    slow_writes(runner, 0.002, monkeypatch)  # a page of 1,000 would hold the writer 2 s
    catching_up = threading.Thread(target=runner.catch_up)
    catching_up.start()
    waits = []
    while catching_up.is_alive() and len(waits) < 40:
        began = time.monotonic()
        append(parts.ledger, [envelope(stream_id=f"B-other-{len(waits)}")])
        waits.append(time.monotonic() - began)
        time.sleep(0.02)
    runner.stop()
    catching_up.join(timeout=30)
    assert len(waits) >= 10, waits
    assert max(waits) < 0.5, sorted(waits)[-5:]


def test_an_append_does_not_wait_while_a_page_is_read_and_computed(
    parts: bootstrap.Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(parts.ledger, [envelope(stream_id=f"B-{i:03d}") for i in range(100)])
    runner = parts.projections.kpis
    runner.pages = PageSize(60.0, first=100, most=100)
    apply, computing = runner.projector.apply, threading.Event()

    def slow_apply(views: Any, cursor: Any, facts: Any, gathered: Any) -> None:
        computing.set()
        time.sleep(1.5)  # a page that takes long to compute
        apply(views, cursor, facts, gathered)

    monkeypatch.setattr(runner.projector, "apply", slow_apply)
    catching_up = threading.Thread(target=runner.catch_up)
    catching_up.start()
    assert computing.wait(30)
    began = time.monotonic()
    append(parts.ledger, [envelope(stream_id="B-meanwhile")])
    took = time.monotonic() - began
    catching_up.join(timeout=30)
    assert runner.position == 100
    assert took < 0.5, took


@pytest.mark.skipif(
    SHIFT_VARIABLE in os.environ, reason="timed waits do not time out under faketime"
)  # the follower looks for new events after a timed wait
def test_a_followed_read_model_counts_new_events_without_being_read(
    parts: bootstrap.Parts, clock: FrozenClock
) -> None:
    projections = parts.projections
    projections.follow(0.05)
    append(parts.ledger, history(clock, batches=1, inspections=3))
    last = parts.ledger.last_position()
    deadline = time.monotonic() + 30
    while any(r.position < last for r in projections.runners.values()):
        assert time.monotonic() < deadline, {n: r.position for n, r in projections.runners.items()}
        time.sleep(0.05)
    projections.close()
    append(parts.ledger, [envelope(stream_id="B-after")])
    time.sleep(0.3)
    assert all(r.position == last for r in projections.runners.values())  # stopped


def test_an_as_of_read_waits_only_for_the_position_of_its_cut(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    app: Any = client.app
    projections: Projections = app.state.projections
    ledger = projections.ledger
    projections.read_wait = 3.0
    receipt = ledger.append(
        [ADAPTER.validate_python(envelope(stream_id=f"B-early-{i}")) for i in range(150)],
        source="test",
    ).receipts[-1]
    append(ledger, [envelope(stream_id=f"B-late-{i:04d}") for i in range(2850)])
    for runner in projections.runners.values():
        runner.pages = PageSize(1.0, first=100, most=100)
        gather = runner.projector.gather

        def slow_gather(facts: Any, gather: Any = gather) -> Any:
            time.sleep(0.3)  # 30 pages to count it all: 9 s, far beyond the read's 3 s
            return gather(facts)

        monkeypatch.setattr(runner.projector, "gather", slow_gather)
    as_of = receipt["recorded_at"].replace("Z", "+00:00")
    for path, params in (("/v1/sla", {}), ("/v1/kpis", {"period": "2026"})):
        began = time.monotonic()
        r = client.get(path, params={**params, "as_of": as_of})
        assert r.status_code == 200, r.text
        assert r.json()["position"] == 150
        assert time.monotonic() - began < 3.0
    assert client.get("/v1/sla").status_code == 503  # the live read needs all 3,000


@pytest.mark.skipif(
    SHIFT_VARIABLE in os.environ, reason="timed waits do not time out under faketime"
)  # a watching read looks at the stored position between timed waits
def test_a_watching_read_waits_for_the_position_another_process_stores(
    parts: bootstrap.Parts, other: bootstrap.Parts, clock: FrozenClock
) -> None:
    mine, worker = parts.projections, other.projections
    mine.watch()
    append(parts.ledger, history(clock, batches=2, inspections=5))
    last = parts.ledger.last_position()
    counted_here: list[int] = []
    for runner in mine.runners.values():  # a watching runner counts nothing itself
        apply = runner.projector.apply

        def noted(*args: Any, apply: Any = apply) -> Any:
            counted_here.append(1)
            return apply(*args)

        runner.projector.apply = noted  # type: ignore[method-assign]
    worker.follow(0.05)
    for runner in mine.runners.values():
        runner.wait_for(last, 30.0)
        assert runner.position == last
    assert counted_here == []
    assert stored(mine) == rebuilt(other.projections)


@pytest.mark.skipif(
    SHIFT_VARIABLE in os.environ, reason="timed waits do not time out under faketime"
)
def test_a_watching_read_whose_read_model_no_worker_counts_starts_its_catch_up(
    parts: bootstrap.Parts, clock: FrozenClock
) -> None:
    projections = parts.projections
    projections.watch()
    append(parts.ledger, history(clock, batches=1, inspections=3))
    last = parts.ledger.last_position()
    runner = projections.kpis
    with pytest.raises(ReadModelBehindError) as behind:
        runner.wait_for(last, 0.3)  # nothing moved while it waited: no worker runs
    assert behind.value.retry_after >= 1
    runner.wait_for(last, 30.0)  # the catch-up it started here counts them
    assert runner.position == last
