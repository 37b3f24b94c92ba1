"""Rules every stream shares: corrections, system-only events, versions and the hash chain,
and the envelope rules that need no stored state (`check_envelope`)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ledger.domain.aggregates import STREAM_CLASSES
from ledger.domain.chain import GENESIS_HASH, chain_hash, verify_stream
from ledger.domain.errors import InvalidEventError, StreamRuleError
from ledger.domain.events import VOCABULARY
from ledger.domain.stream import check_envelope, stream_uuid
from ledger.domain.time import parse_time
from tests.domain.builders import (
    DATA,
    NEW_STREAM,
    NOW,
    appended,
    at,
    corrected,
    given,
    record,
    when,
)

# --- corrections ---------------------------------------------------------------------------


def test_a_correction_names_an_event_of_its_stream() -> None:
    inspection = record("inspection.recorded")
    batch = given(record("batch.registered"), inspection)
    [correction] = appended(when(batch, corrected(inspection, {**DATA["inspection.recorded"]})))
    assert correction["data"]["corrects_event_id"] == inspection["event_id"]


def test_a_correction_of_an_unknown_event_is_refused() -> None:
    batch = given(record("batch.registered"))
    stray = record("inspection.recorded")  # never appended
    with pytest.raises(StreamRuleError, match="which is not an event of this stream"):
        when(batch, corrected(stray))


def test_a_correction_of_another_streams_event_is_refused() -> None:
    inspection = record("inspection.recorded", stream_id="B-1")
    given(record("batch.registered", stream_id="B-1"), inspection)
    other = given(record("batch.registered", stream_id="B-2"))
    correction = {**corrected(inspection), "stream": {"type": "batch", "id": "B-2"}}
    with pytest.raises(StreamRuleError, match="is not an event of this stream"):
        when(other, correction)


def test_a_complaint_cannot_correct_an_event_of_the_batch_it_names() -> None:
    inspection = record("inspection.recorded")
    given(record("batch.registered"), inspection)
    complaint = given(record("complaint.filed"))
    correction = {**corrected(inspection), "stream": {"type": "complaint", "id": "C-2026-0007"}}
    with pytest.raises(StreamRuleError, match="is not an event of this stream"):
        when(complaint, correction)


def test_a_correction_corrects_an_original_not_a_correction() -> None:
    inspection = record("inspection.recorded")
    first = corrected(inspection)
    batch = given(record("batch.registered"), inspection, first)
    with pytest.raises(StreamRuleError, match="not a correction"):
        when(batch, corrected(first, first["data"]))


def test_an_event_may_be_corrected_again() -> None:
    inspection = record("inspection.recorded")
    batch = given(record("batch.registered"), inspection, corrected(inspection))
    [again] = appended(when(batch, corrected(inspection)))
    assert again["version"] == 4


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**DATA["inspection.recorded"], "defects": 51}, "data.data"),
        ({**DATA["inspection.recorded"], "colour": "red"}, "data.data.colour"),
        ({"sample_size": 50, "defects": 0, "result": "pass"}, "data.data.stage"),
        ({**DATA["inspection.recorded"], "sample_size": "50"}, "data.data.sample_size"),
    ],
    ids=["a rule across fields", "an unknown field", "a missing field", "a wrong type"],
)
def test_a_correction_carries_valid_data_of_the_corrected_type(
    data: dict[str, object], field: str
) -> None:
    inspection = record("inspection.recorded")
    batch = given(record("batch.registered"), inspection)
    with pytest.raises(InvalidEventError) as refused:
        when(batch, corrected(inspection, data))
    assert refused.value.field == field
    assert refused.value.message.endswith("(as data of inspection.recorded)")


# --- what only the ledger appends ----------------------------------------------------------


OPENINGS = {"batch": "batch.registered", "complaint": "complaint.filed"}


@pytest.mark.parametrize("stream_type", OPENINGS)
def test_nobody_but_the_ledger_appends_an_escalation(stream_type: str) -> None:
    case = given(record(OPENINGS[stream_type]))
    with pytest.raises(StreamRuleError, match=re.escape("only the ledger appends escalation")):
        when(case, record("escalation.raised", stream_type=stream_type))


def test_the_ledger_appends_an_escalation() -> None:
    batch = given(record("batch.registered"))
    [escalation] = appended(when(batch, record("escalation.raised"), system=True))
    assert escalation["type"] == "escalation.raised"


def test_nobody_but_the_ledger_corrects_an_escalation() -> None:
    escalation = record("escalation.raised")
    batch = given(record("batch.registered"), escalation)
    moved = {**DATA["escalation.raised"], "department": "procurement"}
    with pytest.raises(StreamRuleError, match=re.escape("only the ledger")):
        when(batch, corrected(escalation, moved))


# --- versions and the hash chain -----------------------------------------------------------


def test_the_first_event_is_version_1_chained_to_the_genesis_hash() -> None:
    opening = record("batch.registered")
    [stored] = appended(when(NEW_STREAM, opening))
    assert stored == {
        **opening,
        "version": 1,
        "prev_hash": GENESIS_HASH,
        "hash": chain_hash(GENESIS_HASH, stored),
    }


def test_each_event_takes_the_next_version_and_links_to_the_previous_hash() -> None:
    batch = when(NEW_STREAM, record("batch.registered"))
    for event_type in ("inspection.recorded", "rework.recorded", "shipment.recorded"):
        when(batch, record(event_type))
    stored = appended(batch)
    assert [r["version"] for r in stored] == [1, 2, 3, 4]
    assert [r["prev_hash"] for r in stored[1:]] == [r["hash"] for r in stored[:-1]]
    assert verify_stream(stored) is None


def test_a_refused_event_leaves_the_stream_as_it_was() -> None:
    batch = given(record("batch.registered"), record("inspection.recorded"))
    version, last_hash = batch.version, batch.last_hash
    with pytest.raises(StreamRuleError):
        when(batch, record("batch.registered"))
    assert (batch.version, batch.last_hash, appended(batch)) == (version, last_hash, [])
    [next_event] = appended(when(batch, record("rework.recorded")))
    assert (next_event["version"], next_event["prev_hash"]) == (3, last_hash)


def test_a_stream_rebuilt_from_its_events_decides_as_the_original() -> None:
    inspection = record("inspection.recorded")
    original = when(NEW_STREAM, record("batch.registered", stream_id="B-9"))
    when(original, inspection)
    events = original.collect_events()
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    assert (rebuilt.version, rebuilt.last_hash) == (2, original.last_hash)
    assert rebuilt.types == original.types


def test_an_event_is_timed_when_it_occurred_and_belongs_to_its_streams_id() -> None:
    opening = record("complaint.filed", occurred_at="2026-11-02T08:15:00+08:00")
    [event] = when(NEW_STREAM, opening).collect_events()
    assert event.timestamp == parse_time("2026-11-02T08:15:00+08:00")
    assert event.originator_id == stream_uuid("complaint", "C-2026-0007")


def test_a_streams_id_is_stable_and_distinct_per_stream_type() -> None:
    assert stream_uuid("batch", "X-1") == stream_uuid("batch", "X-1")
    assert len({stream_uuid(t, "X-1") for t in STREAM_CLASSES}) == 3
    assert stream_uuid("batch", "X-1") != stream_uuid("batch", "X-2")


# --- envelope rules that need no stored state (422) ----------------------------------------

MISPLACED = [
    (event_type, stream_type)
    for event_type, (_, streams) in VOCABULARY.items()
    for stream_type in STREAM_CLASSES
    if stream_type not in streams
]


@pytest.mark.parametrize(("event_type", "stream_type"), MISPLACED)
def test_an_event_type_goes_only_to_its_streams(event_type: str, stream_type: str) -> None:
    with pytest.raises(InvalidEventError) as refused:
        check_envelope(record(event_type, stream_type=stream_type), NOW)
    assert refused.value.field == "type"
    assert refused.value.message.startswith(f"{event_type} belongs on a ")


@pytest.mark.parametrize("event_type", list(VOCABULARY))
def test_an_event_type_goes_to_each_of_its_streams(event_type: str) -> None:
    for stream_type in VOCABULARY[event_type][1]:
        check_envelope(record(event_type, stream_type=stream_type), NOW)


@pytest.mark.parametrize(
    "occurred_at",
    [
        at(timedelta(minutes=5)),
        (NOW + timedelta(minutes=5))
        .astimezone(parse_time("2026-01-01T00:00:00+08:00").tzinfo)
        .isoformat(),
        at(-timedelta(days=3650)),
        "2026-11-26T12:05:00.000000999Z",  # cut to microseconds: not after the bound
    ],
    ids=["5 minutes ahead", "5 minutes ahead at +08:00", "ten years ago", "nanoseconds"],
)
def test_an_event_may_lie_up_to_5_minutes_after_the_ledgers_clock(occurred_at: str) -> None:
    check_envelope(record("batch.registered", occurred_at=occurred_at), NOW)


@pytest.mark.parametrize(
    "occurred_at",
    [at(timedelta(minutes=5, microseconds=1)), "2026-11-26T20:05:01+08:00", at(timedelta(days=1))],
    ids=["5 minutes and 1 µs ahead", "5 minutes 1 s ahead at +08:00", "a day ahead"],
)
def test_an_event_further_in_the_future_is_refused(occurred_at: str) -> None:
    with pytest.raises(InvalidEventError) as refused:
        check_envelope(record("batch.registered", occurred_at=occurred_at), NOW)
    assert refused.value.field == "occurred_at"
    assert "more than 5 minutes after the ledger's clock" in refused.value.message
