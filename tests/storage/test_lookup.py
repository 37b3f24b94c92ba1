"""Looking stored events up by event_id (idempotent retries, receipts, the read models' reads of
events they index): any number of ids at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from pydantic import TypeAdapter

from ledger.application import Ledger
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.storage.sqlite import LOOKUP_CHUNK
from tests.conftest import envelope

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)


def test_a_lookup_of_more_ids_than_one_query_holds_finds_them_all(ledger: Ledger) -> None:
    count = LOOKUP_CHUNK + 500  # SQLite builds allow as few as 32,766 variables in a query
    ids: list[str] = []
    for start in range(0, count, 1000):
        models = [
            ADAPTER.validate_python(envelope(stream_id=f"B-LOOKUP-{i}"))
            for i in range(start, min(count, start + 1000))
        ]
        ledger.append(models, source="test")
        ids += [str(m.event_id) for m in models]
    found = ledger.events_by_id([*ids, str(uuid.uuid4())])  # and one never stored
    assert sorted(found) == sorted(ids)
    assert [found[i].record()["event_id"] for i in ids] == ids
