"""The per-stream hash chain and its canonical form, as docs/CANONICAL.md lets anyone check it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ledger.domain.chain import (
    GENESIS_HASH,
    HASHED_FIELDS,
    canonical,
    chain_hash,
    content_digest,
    verify_stream,
)
from tests.domain.builders import NEW_STREAM, appended, record, when


def sealed_stream(length: int = 4) -> list[dict[str, Any]]:
    """The sealed records of a batch of `length` events, as the ledger stores them."""
    batch = when(NEW_STREAM, record("batch.registered"))
    for _ in range(length - 1):
        when(batch, record("inspection.recorded"))
    return appended(batch)


def documented_hash(prev: str, event: dict[str, Any]) -> str:
    """The check of docs/CANONICAL.md, written without the ledger's code."""
    keys = ["event_id", "type", "stream", "version", "occurred_at", "actor", "source"]
    keys += ["data", "attributes"]
    text = json.dumps(
        {k: event[k] for k in keys}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(prev.encode() + text.encode()).hexdigest()


def test_each_hash_is_the_documented_sha256_of_the_previous_hash_and_the_canonical_form() -> None:
    prev = GENESIS_HASH
    for event in sealed_stream():
        assert event["prev_hash"] == prev
        assert event["hash"] == documented_hash(prev, event)
        prev = event["hash"]


def test_the_genesis_hash_is_64_zeros() -> None:
    assert GENESIS_HASH == "0" * 64


def test_the_canonical_form_is_sorted_compact_utf8_of_the_hashed_fields_only() -> None:
    event = sealed_stream(1)[0]
    text = canonical({**event, "position": 7, "recorded_at": "2026-11-26T12:00:00.000000Z"})
    assert text.decode("utf-8") == json.dumps(
        {k: event[k] for k in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert "王芳".encode() in text  # not \u escapes


def test_key_order_does_not_change_the_hash() -> None:
    event = sealed_stream(1)[0]
    reordered = dict(reversed(list(event.items())))
    reordered["data"] = dict(reversed(list(event["data"].items())))
    assert chain_hash(GENESIS_HASH, reordered) == event["hash"]


@pytest.mark.parametrize("field", ["position", "recorded_at", "prev_hash", "hash"])
def test_what_the_hash_does_not_cover_leaves_it_alone(field: str) -> None:
    event = sealed_stream(1)[0]
    assert chain_hash(GENESIS_HASH, {**event, field: "other"}) == event["hash"]


@pytest.mark.parametrize("field", HASHED_FIELDS)
def test_changing_any_hashed_field_changes_the_hash(field: str) -> None:
    event = sealed_stream(1)[0]
    assert chain_hash(GENESIS_HASH, {**event, field: "tampered"}) != event["hash"]


def test_the_same_event_after_another_previous_hash_has_another_hash() -> None:
    event = sealed_stream(1)[0]
    assert chain_hash("f" * 64, event) != event["hash"]


def test_an_intact_stream_verifies() -> None:
    assert verify_stream(sealed_stream()) is None
    assert verify_stream([]) is None


def test_tampered_data_is_found_at_its_event() -> None:
    events = sealed_stream()
    events[2] = {**events[2], "data": {**events[2]["data"], "defects": 0}}
    assert verify_stream(events) == 2


def test_a_rehashed_tampered_event_breaks_the_link_of_the_next() -> None:
    events = sealed_stream()
    forged = {**events[1], "data": {**events[1]["data"], "defects": 0}}
    forged["hash"] = chain_hash(forged["prev_hash"], forged)
    events[1] = forged
    assert verify_stream(events) == 2


def test_a_missing_event_is_found_where_the_chain_breaks() -> None:
    events = sealed_stream()
    del events[1]
    assert verify_stream(events) == 1


def test_swapped_events_are_found() -> None:
    events = sealed_stream()
    events[1], events[2] = events[2], events[1]
    assert verify_stream(events) == 1


def test_a_stream_that_does_not_start_at_the_genesis_is_found() -> None:
    assert verify_stream(sealed_stream()[1:]) == 0


def test_two_appends_of_one_event_have_the_same_content_at_any_version() -> None:
    # What makes a retry "the same": everything the sender chose and the source, not the place.
    event = sealed_stream(1)[0]
    elsewhere = {**event, "version": 9, "prev_hash": "f" * 64, "hash": "e" * 64}
    assert content_digest(elsewhere) == content_digest(event)
    unsealed = {k: v for k, v in event.items() if k not in ("version", "prev_hash", "hash")}
    assert content_digest(unsealed) == content_digest(event)


@pytest.mark.parametrize("field", [f for f in HASHED_FIELDS if f != "version"])
def test_other_content_under_the_same_event_id_is_other_content(field: str) -> None:
    event = sealed_stream(1)[0]
    assert content_digest({**event, field: "other"}) != content_digest(event)
