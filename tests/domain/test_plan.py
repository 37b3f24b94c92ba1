"""A plan: targets, policies and revenue, with no opening event."""

from __future__ import annotations

import pytest

from ledger.domain.errors import StreamRuleError
from ledger.domain.events import VOCABULARY
from tests.domain.builders import NEW_STREAM, appended, corrected, given, record, when

PLAN_TYPES = [t for t, (_, streams) in VOCABULARY.items() if "plan" in streams]


@pytest.mark.parametrize("event_type", [t for t in PLAN_TYPES if t != "event.corrected"])
def test_a_plan_starts_with_any_plan_event(event_type: str) -> None:
    [first] = appended(when(NEW_STREAM, record(event_type, stream_type="plan")))
    assert (first["type"], first["version"]) == (event_type, 1)


@pytest.mark.parametrize("event_type", [t for t in PLAN_TYPES if t != "event.corrected"])
def test_a_plan_takes_the_same_kind_of_event_again(event_type: str) -> None:
    plan = given(record(event_type, stream_type="plan"))
    [again] = appended(when(plan, record(event_type, stream_type="plan")))
    assert again["version"] == 2


def test_a_plan_cannot_start_with_a_correction() -> None:
    with pytest.raises(StreamRuleError, match="is not an event of this stream"):
        when(NEW_STREAM, record("event.corrected", stream_type="plan"))


def test_a_plan_takes_a_correction_of_its_target() -> None:
    target = record("target.set")
    plan = given(target)
    [correction] = appended(when(plan, corrected(target, {**target["data"], "target": 0.01})))
    assert correction["data"]["data"]["target"] == 0.01
