"""A batch: a material lot or a production batch, started by `batch.registered`."""

from __future__ import annotations

import re

import pytest

from ledger.domain.errors import StreamRuleError
from ledger.domain.events import VOCABULARY
from tests.domain.builders import (
    DATA,
    MATERIAL_LOT,
    NEW_STREAM,
    appended,
    corrected,
    given,
    record,
    when,
)

BATCH_TYPES = [t for t, (_, streams) in VOCABULARY.items() if "batch" in streams]
AFTER_REGISTRATION = [
    t for t in BATCH_TYPES if t not in ("batch.registered", "event.corrected", "escalation.raised")
]


@pytest.mark.parametrize("event_type", [t for t in BATCH_TYPES if t != "batch.registered"])
def test_a_batch_starts_with_its_registration(event_type: str) -> None:
    with pytest.raises(
        StreamRuleError, match=re.escape("does not exist yet: it starts with batch.registered")
    ):
        when(NEW_STREAM, record(event_type), system=True)


def test_a_registration_opens_the_batch_at_version_1() -> None:
    [registered] = appended(when(NEW_STREAM, record("batch.registered")))
    assert registered["version"] == 1
    assert registered["type"] == "batch.registered"


def test_a_batch_is_registered_only_once() -> None:
    batch = given(record("batch.registered"))
    with pytest.raises(StreamRuleError, match="is already started"):
        when(batch, record("batch.registered"))


@pytest.mark.parametrize("event_type", AFTER_REGISTRATION)
def test_a_production_batch_takes_every_batch_event_after_its_registration(
    event_type: str,
) -> None:
    batch = given(record("batch.registered"))
    [event] = appended(when(batch, record(event_type)))
    assert (event["type"], event["version"]) == (event_type, 2)


def test_a_production_batch_ships() -> None:
    batch = given(record("batch.registered"), record("inspection.recorded"))
    [shipment] = appended(when(batch, record("shipment.recorded")))
    assert shipment["version"] == 3


def test_a_material_lot_cannot_ship() -> None:
    lot = given(record("batch.registered", MATERIAL_LOT, stream_id="M-2026-0107"))
    with pytest.raises(StreamRuleError, match="M-2026-0107 is a material lot: only production"):
        when(lot, record("shipment.recorded", stream_id="M-2026-0107"))
    assert appended(lot) == []
    assert lot.version == 1


@pytest.mark.parametrize("event_type", [t for t in AFTER_REGISTRATION if t != "shipment.recorded"])
def test_a_material_lot_takes_every_other_batch_event(event_type: str) -> None:
    lot = given(record("batch.registered", MATERIAL_LOT))
    [event] = appended(when(lot, record(event_type)))
    assert event["type"] == event_type


def test_a_batch_corrected_into_a_material_lot_no_longer_ships() -> None:
    registered = record("batch.registered")
    batch = given(registered, record("shipment.recorded"), corrected(registered, MATERIAL_LOT))
    with pytest.raises(StreamRuleError, match="is a material lot"):
        when(batch, record("shipment.recorded"))


def test_a_material_lot_corrected_into_a_production_batch_ships() -> None:
    registered = record("batch.registered", MATERIAL_LOT)
    batch = given(registered, corrected(registered, DATA["batch.registered"]))
    [shipment] = appended(when(batch, record("shipment.recorded")))
    assert shipment["version"] == 3


def test_a_correction_of_another_event_leaves_the_kind_of_batch_alone() -> None:
    inspection = record("inspection.recorded")
    lot = given(record("batch.registered", MATERIAL_LOT), inspection, corrected(inspection))
    with pytest.raises(StreamRuleError, match="is a material lot"):
        when(lot, record("shipment.recorded"))


def test_a_batch_rebuilt_from_its_stored_events_keeps_its_corrected_kind() -> None:
    registered = record("batch.registered")
    batch = when(NEW_STREAM, registered)
    when(batch, corrected(registered, MATERIAL_LOT))
    rebuilt = None
    for event in batch.collect_events():  # as the ledger projects a stream it reads back
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    with pytest.raises(StreamRuleError, match="is a material lot"):
        when(rebuilt, record("shipment.recorded"))
