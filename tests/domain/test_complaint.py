"""A complaint: started by `complaint.filed`; once closed, only reopening, corrections and costs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ledger.domain.errors import StreamRuleError
from ledger.domain.events import VOCABULARY
from ledger.domain.stream import LedgerStream
from tests.domain.builders import NEW_STREAM, appended, corrected, given, record, when

COMPLAINT_TYPES = [t for t, (_, streams) in VOCABULARY.items() if "complaint" in streams]
AFTER_CLOSE = ["complaint.reopened", "event.corrected", "quality_cost.recorded"]


def complaint_record(event_type: str) -> dict[str, Any]:
    return record(event_type, stream_type="complaint")


def closed_complaint() -> tuple[LedgerStream, dict[str, Any]]:
    """A filed, investigated and closed complaint, and its investigation."""
    investigation = complaint_record("investigation.reported")
    complaint = given(
        complaint_record("complaint.filed"), investigation, complaint_record("complaint.closed")
    )
    return complaint, investigation


@pytest.mark.parametrize("event_type", [t for t in COMPLAINT_TYPES if t != "complaint.filed"])
def test_a_complaint_starts_when_it_is_filed(event_type: str) -> None:
    with pytest.raises(StreamRuleError, match=re.escape("it starts with complaint.filed")):
        when(NEW_STREAM, complaint_record(event_type), system=True)


def test_a_complaint_is_filed_only_once() -> None:
    complaint = given(complaint_record("complaint.filed"))
    with pytest.raises(StreamRuleError, match="is already started"):
        when(complaint, complaint_record("complaint.filed"))


@pytest.mark.parametrize(
    "event_type",
    [t for t in COMPLAINT_TYPES if t not in ("complaint.filed", "complaint.reopened")],
)
def test_an_open_complaint_takes_every_complaint_event_but_a_reopening(event_type: str) -> None:
    investigation = complaint_record("investigation.reported")
    complaint = given(complaint_record("complaint.filed"), investigation)
    event = complaint_record(event_type)
    if event_type == "event.corrected":
        event = corrected(investigation)
    [stored] = appended(when(complaint, event, system=True))
    assert (stored["type"], stored["version"]) == (event_type, 3)


def test_an_open_complaint_has_nothing_to_reopen() -> None:
    complaint = given(complaint_record("complaint.filed"))
    with pytest.raises(StreamRuleError, match="C-2026-0007 is open: nothing to reopen"):
        when(complaint, complaint_record("complaint.reopened"))


def test_a_reopened_complaint_has_nothing_more_to_reopen() -> None:
    complaint = given(
        complaint_record("complaint.filed"),
        complaint_record("complaint.closed"),
        complaint_record("complaint.reopened"),
    )
    with pytest.raises(StreamRuleError, match="nothing to reopen"):
        when(complaint, complaint_record("complaint.reopened"))


@pytest.mark.parametrize(
    "event_type", [t for t in COMPLAINT_TYPES if t not in [*AFTER_CLOSE, "complaint.filed"]]
)
def test_a_closed_complaint_refuses_everything_but_reopening_corrections_and_costs(
    event_type: str,
) -> None:
    complaint, _ = closed_complaint()
    # Even the ledger's own escalation: a closed complaint has no deadline left to miss.
    with pytest.raises(
        StreamRuleError, match=re.escape("C-2026-0007 is closed: only complaint.reopened")
    ):
        when(complaint, complaint_record(event_type), system=True)


def test_a_closed_complaint_takes_a_reopening() -> None:
    complaint, _ = closed_complaint()
    [reopened] = appended(when(complaint, complaint_record("complaint.reopened")))
    assert reopened["version"] == 4


def test_a_closed_complaint_takes_a_correction() -> None:
    complaint, investigation = closed_complaint()
    [correction] = appended(when(complaint, corrected(investigation)))
    assert correction["type"] == "event.corrected"


def test_a_closed_complaint_takes_a_quality_cost() -> None:
    complaint, _ = closed_complaint()
    [cost] = appended(when(complaint, complaint_record("quality_cost.recorded")))
    assert cost["type"] == "quality_cost.recorded"


def test_a_closed_complaint_stays_closed_after_a_correction_or_a_cost() -> None:
    complaint, investigation = closed_complaint()
    when(complaint, corrected(investigation))
    when(complaint, complaint_record("quality_cost.recorded"))
    with pytest.raises(StreamRuleError, match="is closed"):
        when(complaint, complaint_record("investigation.reported"))


def test_a_reopened_complaint_takes_the_work_again_and_closes_again() -> None:
    complaint, _ = closed_complaint()
    when(complaint, complaint_record("complaint.reopened"))
    when(complaint, complaint_record("investigation.reported"))
    when(complaint, complaint_record("complaint.closed"))
    assert [r["type"] for r in appended(complaint)] == [
        "complaint.reopened",
        "investigation.reported",
        "complaint.closed",
    ]


def test_a_closed_complaint_refuses_being_closed_again() -> None:
    complaint, _ = closed_complaint()
    with pytest.raises(StreamRuleError, match="is closed"):
        when(complaint, complaint_record("complaint.closed"))
