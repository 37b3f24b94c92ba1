"""Concurrent writers (issue 3, item 7; SPEC §5 "even under concurrent writers").

- 50 concurrent appends with the same `expected_version` give exactly one success, through the
  `Ledger` and over HTTP (a real uvicorn server: TestClient is not thread-safe), on both back-ends;
- on PostgreSQL, 8 writers appending 500 events each while a follower reads the feed: the
  follower sees every event exactly once, in strictly increasing position order.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ledger.api.app import create_app
from ledger.application import Ledger
from ledger.domain.errors import StreamsBusyError, VersionConflictError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.settings import Settings
from ledger.storage.database import Database
from ledger.storage.rows import StoredRow
from tests.conftest import FrozenClock, bearer, envelope

CONTENDERS = 50
ENVELOPE: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)


def parse(body: dict[str, Any]) -> EnvelopeBase:
    return ENVELOPE.validate_python(body)


def contenders(stream_id: str, expected_version: int) -> list[dict[str, Any]]:
    """50 different events, all claiming the stream's next version."""
    return [
        envelope(
            "inspection.recorded",
            stream_id=stream_id,
            data={"stage": "final", "sample_size": 50, "defects": i % 50, "result": "pass"},
            expected_version=expected_version,
        )
        for i in range(CONTENDERS)
    ]


def race(attempt: Any, bodies: list[dict[str, Any]]) -> list[Any]:
    """Run `attempt(body)` for every body at once, released together by a barrier."""
    barrier = threading.Barrier(len(bodies))

    def go(body: dict[str, Any]) -> Any:
        barrier.wait(timeout=30)
        return attempt(body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(go, bodies))


@pytest.mark.parametrize("expected_version", [0, 1])
def test_concurrent_appends_with_one_expected_version_let_exactly_one_win(
    ledger: Ledger, expected_version: int
) -> None:
    stream_id = f"B-{uuid.uuid4().hex[:12]}"
    if expected_version == 1:
        ledger.append([parse(envelope(stream_id=stream_id))], source="test")
        bodies = contenders(stream_id, expected_version)
    else:
        # 50 different first events of one new stream, all expecting it not to exist yet.
        bodies = [envelope(stream_id=stream_id, expected_version=0) for _ in range(CONTENDERS)]

    def attempt(body: dict[str, Any]) -> str:
        try:
            ledger.append([parse(body)], source="test")
        except VersionConflictError:
            return "conflict"
        return str(body["event_id"])

    outcomes = race(attempt, bodies)
    winners = [o for o in outcomes if o != "conflict"]
    assert len(winners) == 1, outcomes
    assert outcomes.count("conflict") == CONTENDERS - 1

    rows = ledger.stream("batch", stream_id)
    assert len(rows) == expected_version + 1
    assert winners[0].encode() in rows[-1].state
    assert len(ledger.feed(0, 1000)) == expected_version + 1


@pytest.fixture
def server(ledger: Ledger, make_key: Callable[..., str]) -> Iterator[tuple[str, dict[str, str]]]:
    """A real uvicorn server on a free port in a background thread: (base URL, auth headers)."""
    app = create_app(Settings(database_url="sqlite:///unused"), ledger=ledger)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", limit_concurrency=None)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", bearer(make_key("admin"))
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_concurrent_http_appends_with_one_expected_version_give_exactly_one_201(
    server: tuple[str, dict[str, str]],
) -> None:
    base, headers = server
    stream_id = f"B-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        first = http.post("/v1/events", json=envelope(stream_id=stream_id))
        assert first.status_code == 201, first.text
    bodies = contenders(stream_id, 1)

    def attempt(body: dict[str, Any]) -> tuple[int, str]:
        # A client per thread: many connections at once, as from many senders.
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            r = http.post("/v1/events", json=body)
            return r.status_code, r.headers.get("content-type", "")

    outcomes = race(attempt, bodies)
    statuses = sorted(s for s, _ in outcomes)
    assert statuses == [201] + [409] * (CONTENDERS - 1), statuses
    assert all(ct == "application/problem+json" for s, ct in outcomes if s == 409)

    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        events = http.get(f"/v1/streams/batch/{stream_id}").json()["events"]
        assert [e["version"] for e in events] == [1, 2]
        assert len(http.get("/v1/events?limit=1000").json()["events"]) == 2


WRITERS = 8
PER_WRITER = 500
STREAMS_PER_WRITER = 5
CHUNK = 5  # events per append: one request may span several of the writer's streams


def writer_events(writer: int) -> list[list[EnvelopeBase]]:
    """One writer's 500 events, in appends of CHUNK: its streams' openers, then inspections."""
    streams = [f"W{writer}-{uuid.uuid4().hex[:8]}-{s}" for s in range(STREAMS_PER_WRITER)]
    bodies = [envelope(stream_id=s) for s in streams]
    for i in range(PER_WRITER - len(streams)):
        bodies.append(
            envelope(
                "inspection.recorded",
                stream_id=streams[i % len(streams)],
                data={"stage": "in_process", "sample_size": 10, "defects": i % 3, "result": "pass"},
            )
        )
    envelopes = [parse(b) for b in bodies]
    return [envelopes[i : i + CHUNK] for i in range(0, len(envelopes), CHUNK)]


class _Follower:
    """Reads the feed, as a follower of the ledger does, until it has seen `total` events."""

    def __init__(
        self,
        ledger: Ledger,
        total: int,
        start: threading.Barrier,
        stopped: threading.Event,
        errors: list[BaseException],
    ) -> None:
        self.ledger = ledger
        self.total = total
        self.start = start
        self.stopped = stopped
        self.errors = errors
        self.seen: list[tuple[int, str]] = []
        self.reads_during_writes: list[int] = []
        self.writers_done = threading.Event()

    def run(self) -> None:
        after = 0
        self.start.wait(timeout=30)
        deadline = time.monotonic() + 60
        while len(self.seen) < self.total and not self.stopped.is_set():
            if time.monotonic() > deadline:
                self.errors.append(TimeoutError(f"follower saw {len(self.seen)} of {self.total}"))
                return
            rows = self.ledger.feed(after, 97)
            for row in rows:
                self.seen.append((row.position, orjson.loads(row.json())["event_id"]))
            if rows:
                after = rows[-1].position
                if not self.writers_done.is_set():
                    self.reads_during_writes.append(len(rows))
            else:
                time.sleep(0.001)


def _whole_feed(ledger: Ledger) -> list[StoredRow]:
    """Every stored event, in position order."""
    final = ledger.feed(0, 1000)
    while final and (more := ledger.feed(final[-1].position, 1000)):
        final += more
    return final


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_follower_sees_every_event_of_concurrent_writers_once_in_order(
    database: Database, clock: FrozenClock
) -> None:
    total = WRITERS * PER_WRITER
    plans = [writer_events(w) for w in range(WRITERS)]
    expected = {str(e.event_id) for plan in plans for chunk in plan for e in chunk}
    assert len(expected) == total

    writers_ledger = Ledger(database, clock=clock, pool_size=WRITERS)
    follower_ledger = Ledger(database, clock=clock, pool_size=1)
    receipts: list[dict[str, Any]] = []
    receipts_lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(WRITERS + 1)
    stop_following = threading.Event()

    def write(plan: list[list[EnvelopeBase]]) -> None:
        try:
            start.wait(timeout=30)
            for chunk in plan:
                result = writers_ledger.append(chunk, source=f"writer-{threading.get_ident()}")
                assert result.created and result.appended == len(chunk)
                with receipts_lock:
                    receipts.extend(result.receipts)
        except BaseException as e:
            errors.append(e)
            raise

    following = _Follower(follower_ledger, total, start, stop_following, errors)
    seen, reads_during_writes, writers_done = (
        following.seen,
        following.reads_during_writes,
        following.writers_done,
    )

    try:
        follower = threading.Thread(target=following.run)
        follower.start()
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            futures = [pool.submit(write, plan) for plan in plans]
            for f in futures:
                f.result(timeout=120)
        writers_done.set()
        follower.join(timeout=60)
        stop_following.set()
        assert not follower.is_alive()
        assert not errors, errors

        positions = [p for p, _ in seen]
        ids = [i for _, i in seen]
        assert len(seen) == total
        assert all(a < b for a, b in itertools.pairwise(positions)), "feed went backwards"
        assert len(set(ids)) == total, "an event was seen twice"
        assert set(ids) == expected, "an event was skipped"
        # The follower saw the same order the ledger reports once everyone is done.
        assert [r.position for r in _whole_feed(follower_ledger)] == positions
        # And the writers' receipts name the same positions.
        assert {(r["position"], r["event_id"]) for r in receipts} == set(seen)
        # The follower really followed: it read events while the writers were still writing.
        assert len(reads_during_writes) > 1, reads_during_writes
    finally:
        stop_following.set()
        writers_ledger.close()
        follower_ledger.close()


def test_concurrent_retries_of_one_event_all_get_its_receipt(ledger: Ledger) -> None:
    """A client retrying while its first attempt is still in flight: one copy, one receipt,
    never a conflict or a 503 (a duplicate event_id must surface as an IntegrityError)."""
    stream_id = f"B-{uuid.uuid4().hex[:12]}"
    ledger.append([parse(envelope(stream_id=stream_id))], source="test")
    body = envelope("rework.recorded", stream_id=stream_id)
    results = race(lambda b: ledger.append([parse(b)], source="test"), [body] * 20)
    assert sum(r.created for r in results) == 1
    assert len({orjson.dumps(r.receipts) for r in results}) == 1
    assert len(ledger.stream("batch", stream_id)) == 2


PLAIN_WRITERS = 100
PLAIN_APPENDS = 3  # per writer, alternating between the two streams


def plain_bodies(streams: list[str], writer: int) -> list[dict[str, Any]]:
    """A writer's appends without expected_version, to the two streams in turn."""
    return [
        envelope(
            "inspection.recorded",
            stream_id=streams[(writer + i) % len(streams)],
            data={"stage": "in_process", "sample_size": 10, "defects": i, "result": "pass"},
        )
        for i in range(PLAIN_APPENDS)
    ]


def assert_contiguous(ledger: Ledger, streams: list[str], appended: int) -> None:
    """Every stream's versions run 1, 2, … with no gap, and every append is stored once."""
    total = 0
    for stream_id in streams:
        versions = [orjson.loads(r.state)["version"] for r in ledger.stream("batch", stream_id)]
        assert versions == list(range(1, len(versions) + 1))
        total += len(versions)
    assert total == appended + len(streams)  # the streams' openers besides


def test_plain_appends_of_many_writers_through_two_ledgers_all_land_in_contiguous_versions(
    database: Database, clock: FrozenClock
) -> None:
    """Without expected_version an append waits its turn: never a conflict (two ledgers on one
    database stand for two server processes)."""
    # A deadline far beyond the test's length: it is about conflicts, not about a loaded
    # machine's waits (the deadline has a test of its own below).
    ledgers = [Ledger(database, clock=clock, pool_size=4, append_wait=60) for _ in range(2)]
    streams = [f"B-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        for stream_id in streams:
            ledgers[0].append([parse(envelope(stream_id=stream_id))], source="test")

        def write(writer: int) -> list[str]:
            outcomes = []
            for body in plain_bodies(streams, writer):
                try:
                    ledgers[writer % 2].append([parse(body)], source="test")
                    outcomes.append("stored")
                except VersionConflictError as e:
                    outcomes.append(f"conflict: {e}")
            return outcomes

        outcomes = [o for found in race(write, list(range(PLAIN_WRITERS))) for o in found]
        assert outcomes == ["stored"] * (PLAIN_WRITERS * PLAIN_APPENDS)
        assert_contiguous(ledgers[1], streams, len(outcomes))
    finally:
        for ledger in ledgers:
            ledger.close()


def test_plain_http_appends_of_many_writers_get_201_never_409(
    server: tuple[str, dict[str, str]], ledger: Ledger, database: Database, clock: FrozenClock
) -> None:
    """Many senders over HTTP while another process appends to the same two streams."""
    base, headers = server
    other = Ledger(database, clock=clock, pool_size=4, append_wait=60)
    served: Ledger = ledger
    served.append_wait = 60  # as above: this test is about conflicts, not a loaded machine
    streams = [f"B-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        for stream_id in streams:
            other.append([parse(envelope(stream_id=stream_id))], source="test")

        def write(writer: int) -> list[int]:
            statuses = []
            with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
                for body in plain_bodies(streams, writer):
                    if writer % 4 == 0:  # a quarter of the writers are the other process
                        try:
                            other.append([parse(body)], source="test")
                        except StreamsBusyError:  # past its deadline on a loaded machine
                            statuses.append(503)
                        else:
                            statuses.append(201)
                        continue
                    r = http.post("/v1/events", json=body)
                    assert r.status_code != 503 or r.headers.get("retry-after"), r.text
                    statuses.append(r.status_code)
            return statuses

        statuses = [s for found in race(write, list(range(PLAIN_WRITERS))) for s in found]
        assert set(statuses) <= {201, 503}, sorted(statuses)
        assert statuses.count(201) >= len(statuses) - 5, sorted(statuses)
        assert_contiguous(other, streams, statuses.count(201))
    finally:
        other.close()


def test_a_plain_http_append_beaten_until_its_deadline_is_a_503_with_retry_after(
    client: TestClient, ledger: Ledger, database: Database, clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    stream_id = f"B-{uuid.uuid4().hex[:12]}"
    assert client.post("/v1/events", json=envelope(stream_id=stream_id)).status_code == 201
    other = Ledger(database, clock=clock, pool_size=2)
    try:
        # the server's ledger holds the stream at version 1; another process took version 2
        other.append([parse(envelope("inspection.recorded", stream_id))], source="other")
        load = ledger._load

        def load_then_lose(keys: list[tuple[str, str]]) -> Any:
            found = load(keys)  # and another process appends before this one inserts
            other.append([parse(envelope("inspection.recorded", stream_id))], source="other")
            return found

        monkeypatch.setattr(ledger, "_load", load_then_lose)
        ledger.append_wait = 0.2
        r = client.post("/v1/events", json=envelope("inspection.recorded", stream_id))
        assert r.status_code == 503, r.text
        assert r.json()["type"].endswith("/streams-busy")
        assert stream_id in r.json()["detail"]
        assert r.headers["Retry-After"] == "1"
    finally:
        other.close()
