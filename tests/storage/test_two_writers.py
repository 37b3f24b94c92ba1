"""Two ledgers on one database (two server processes), each deciding on the streams it last
wrote: whatever the interleaving, every append is answered as if decided on what is stored,
and every stream's hash chain holds."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from ledger.application import Ledger
from ledger.domain.chain import verify_stream
from ledger.domain.errors import StreamRuleError, StreamsBusyError, VersionConflictError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.storage.database import Database
from tests.conftest import FrozenClock, envelope

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)


@pytest.fixture
def writers(database: Database) -> Iterator[tuple[Ledger, Ledger]]:
    first = Ledger(database, clock=FrozenClock(), pool_size=2)
    second = Ledger(database, clock=FrozenClock(), pool_size=2)
    try:
        yield first, second
    finally:
        first.close()
        second.close()


Item = tuple[int, bool, int | None]  # (which stream, an opening event?, expected_version)


def send(ledger: Ledger, streams: list[str], items: list[Item]) -> Any:
    """Append `items` as one request: their versions, or which error answered it."""
    models = []
    for s, opening, expected in items:
        event_type = "batch.registered" if opening else "inspection.recorded"
        extra: dict[str, Any] = {} if expected is None else {"expected_version": expected}
        models.append(ADAPTER.validate_python(envelope(event_type, streams[s], **extra)))
    try:
        return [r["version"] for r in ledger.append(models, source="test").receipts]
    except VersionConflictError:
        return "version conflict"
    except StreamRuleError:
        return "rule"


def expected_answer(versions: list[int], items: list[Item]) -> Any:
    """What a ledger that read the database first answers (expected versions are checked
    before the stream rules, each in the order of the request)."""
    if any(e is not None and e != versions[s] for s, _, e in items):
        return "version conflict"
    if any(opening != (versions[s] == 0) for s, opening, _ in items):
        return "rule"
    return [versions[s] + 1 for s, _, _ in items]


item = st.tuples(st.integers(0, 1), st.booleans(), st.none() | st.integers(0, 4))
operations = st.lists(
    st.tuples(
        st.integers(0, 1),  # which writer
        # one event, or a batch with one event on each stream
        item.map(lambda i: [i])
        | st.tuples(item, item).map(lambda p: [(0, *p[0][1:]), (1, *p[1][1:])]),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_two_writers_are_answered_as_if_each_read_the_database_first(
    writers: tuple[Ledger, Ledger], ops: list[tuple[int, list[Item]]]
) -> None:
    streams = [f"B-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    versions = [0, 0]
    for writer, items in ops:
        answer = send(writers[writer], streams, items)
        assert answer == expected_answer(versions, items)
        if isinstance(answer, list):
            for s, _, _ in items:
                versions[s] += 1
    for s, stream in enumerate(streams):
        rows = writers[0].stream_rows("batch", stream)
        records = [orjson.loads(r.state) for r in rows]
        assert [r["version"] for r in records] == list(range(1, versions[s] + 1))
        assert verify_stream(records) is None


def test_a_batch_with_a_stream_the_writer_never_saw_is_decided_on_the_database(
    writers: tuple[Ledger, Ledger],
) -> None:
    first, second = writers
    first.append([ADAPTER.validate_python(envelope("batch.registered", "B1"))], source="t")
    first.append([ADAPTER.validate_python(envelope("target.set", "P1"))], source="t")
    next_one = envelope("inspection.recorded", "B1", expected_version=1)
    second.append([ADAPTER.validate_python(next_one)], source="t")
    # second holds B1 at version 2 and has never seen plan P1, which it takes to be new
    batch = [
        envelope("inspection.recorded", "B1", expected_version=2),
        envelope("target.set", "P1"),
    ]
    result = second.append([ADAPTER.validate_python(e) for e in batch], source="t")
    assert [r["version"] for r in result.receipts] == [3, 2]


def test_an_exact_retry_through_the_other_writer_gets_the_original_receipt(
    writers: tuple[Ledger, Ledger],
) -> None:
    first, second = writers
    opening = ADAPTER.validate_python(envelope("batch.registered", "B-retry"))
    receipt = first.append([opening], source="test").receipts[0]
    again = second.append([opening], source="test")  # second never saw the stream
    assert not again.created
    assert again.receipts == [receipt]
    nxt = ADAPTER.validate_python(envelope("inspection.recorded", "B-retry"))
    stored = second.append([nxt], source="test").receipts
    assert stored[0]["version"] == 2
    assert first.append([nxt], source="test").receipts == stored  # first held version 1
    last = ADAPTER.validate_python(envelope("inspection.recorded", "B-retry"))
    assert first.append([last], source="test").receipts[0]["version"] == 3


def test_an_import_skips_what_another_import_stored_while_it_decided(
    writers: tuple[Ledger, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = writers
    first.append([ADAPTER.validate_python(envelope("complaint.filed", "C1"))], source="import")
    close = ADAPTER.validate_python(envelope("complaint.closed", "C1"))
    load = second._load

    def load_after_the_other_import(keys: list[tuple[str, str]]) -> Any:
        # the other import stores the same event between second's lookup and its read
        monkeypatch.setattr(second, "_load", load)
        first.append([close], source="import", skip_stored=True)
        return load(keys)

    monkeypatch.setattr(second, "_load", load_after_the_other_import)
    result = second.append([close], source="import", skip_stored=True)
    assert (result.created, result.appended) == (False, 0)
    assert result.receipts[0]["version"] == 2


def test_a_writer_that_believes_a_stream_is_further_along_never_leaves_a_gap(
    writers: tuple[Ledger, Ledger],
) -> None:
    """As after restoring an older backup under a running server: the cache is ahead of the
    database, and the insert itself refuses the version after the gap."""
    first, _ = writers
    first.append([ADAPTER.validate_python(envelope("batch.registered", "B-gap"))], source="t")
    key = ("batch", "B-gap")
    [stream] = first.streams.take([key]).values()
    assert stream is not None
    for _ in range(2):  # versions 2 and 3, believed but never stored
        model = ADAPTER.validate_python(envelope("inspection.recorded", "B-gap"))
        stream.record(model.to_record("t"), system=False)
    stream.collect_events()
    first.streams.give({key: stream})

    model = ADAPTER.validate_python(envelope("inspection.recorded", "B-gap"))
    assert first.append([model], source="t").receipts[0]["version"] == 2
    records = [orjson.loads(r.state) for r in first.stream_rows(*key)]
    assert [r["version"] for r in records] == [1, 2]
    assert verify_stream(records) is None


def always_beaten(
    loser: Ledger, winner: Ledger, stream_id: str, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Make `winner` take the stream's next version right after every read by `loser`: the
    loser's every decision is stale by the time it inserts. Returns the loser's read count."""
    load = loser._load
    reads: list[int] = []

    def load_then_lose(keys: list[tuple[str, str]]) -> Any:
        found = load(keys)
        reads.append(1)
        model = ADAPTER.validate_python(envelope("inspection.recorded", stream_id))
        winner.append([model], source="t")
        return found

    monkeypatch.setattr(loser, "_load", load_then_lose)
    return reads


def test_a_plain_append_that_keeps_losing_the_race_gives_up_busy_past_its_deadline(
    writers: tuple[Ledger, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = writers
    first.append([ADAPTER.validate_python(envelope("batch.registered", "B-busy"))], source="t")
    second.append_wait = 0.3
    reads = always_beaten(second, first, "B-busy", monkeypatch)
    model = ADAPTER.validate_python(envelope("inspection.recorded", "B-busy"))
    began = time.monotonic()
    with pytest.raises(StreamsBusyError, match="B-busy") as caught:
        second.append([model], source="t")
    assert 0.3 <= time.monotonic() - began < 2
    assert caught.value.retry_after >= 1
    assert len(reads) > 2  # it decided again and again on what was stored meanwhile
    records = [orjson.loads(r.state) for r in first.stream_rows("batch", "B-busy")]
    assert [r["version"] for r in records] == list(range(1, len(records) + 1))
    assert verify_stream(records) is None


def test_an_append_with_expected_version_that_loses_the_race_is_a_version_conflict(
    writers: tuple[Ledger, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = writers
    first.append([ADAPTER.validate_python(envelope("batch.registered", "B-vc"))], source="t")
    always_beaten(second, first, "B-vc", monkeypatch)
    model = ADAPTER.validate_python(envelope("inspection.recorded", "B-vc", expected_version=1))
    with pytest.raises(VersionConflictError):
        second.append([model], source="t")
