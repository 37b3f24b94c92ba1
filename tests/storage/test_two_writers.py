"""Two ledgers on one database (two server processes), each deciding on the streams it last
wrote: whatever the interleaving, every append is answered as if decided on what is stored,
and every stream's hash chain holds."""

from __future__ import annotations

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
from ledger.domain.errors import StreamRuleError, VersionConflictError
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


def send(ledger: Ledger, stream: str, opening: bool, expected: int | None) -> Any:
    event_type = "batch.registered" if opening else "inspection.recorded"
    extra: dict[str, Any] = {} if expected is None else {"expected_version": expected}
    model = ADAPTER.validate_python(envelope(event_type, stream, **extra))
    try:
        return ledger.append([model], source="test").receipts[0]["version"]
    except VersionConflictError:
        return "version conflict"
    except StreamRuleError:
        return "rule"


operations = st.lists(
    st.tuples(
        st.integers(0, 1),  # which writer
        st.integers(0, 1),  # which stream
        st.booleans(),  # an opening event (batch.registered) or the next one
        st.none() | st.integers(0, 4),  # expected_version
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
    writers: tuple[Ledger, Ledger], ops: list[tuple[int, int, bool, int | None]]
) -> None:
    streams = [f"B-{uuid.uuid4().hex[:12]}" for _ in range(2)]
    versions = [0, 0]
    for writer, s, opening, expected in ops:
        answer = send(writers[writer], streams[s], opening, expected)
        current = versions[s]
        if expected is not None and expected != current:
            assert answer == "version conflict"
        elif opening != (current == 0):
            assert answer == "rule"
        else:
            versions[s] += 1
            assert answer == versions[s]
    for s, stream in enumerate(streams):
        rows = writers[0].stream_rows("batch", stream)
        records = [orjson.loads(r.state) for r in rows]
        assert [r["version"] for r in records] == list(range(1, versions[s] + 1))
        assert verify_stream(records) is None


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
