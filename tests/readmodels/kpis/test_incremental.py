"""The KPI read model folds a stream's rows forward: an event's catch-up reads none of its
stream's earlier events (issue 11, item 1), and the folded rows agree with the recomputation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.readmodels.projections import Projections
from tests.readmodels.kpis.test_read_model import START, Story, agree


def counting_stream_reads(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The streams read from now on, as the projector reads them."""
    read: list[Any] = []
    original: Callable[..., Any] = ledger.streams_rows

    def streams_rows(keys: list[tuple[str, str]]) -> Any:
        read.extend(keys)
        return original(keys)

    monkeypatch.setattr(ledger, "streams_rows", streams_rows)
    return read


def inspect(story: Story, batch: str, hours: int, stage: str = "final", defects: int = 0) -> None:
    story.send("inspection.recorded", batch,
               {"stage": stage, "sample_size": 10, "defects": defects,
                "result": "fail" if defects else "pass"},
               START + timedelta(hours=hours), who=f"E{hours % 3 + 1}")  # fmt: skip


def test_inspections_reworks_and_shipments_of_a_long_batch_are_counted_without_reading_it(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    batch = story.batch(0, START)
    complaint = story.complaint(0, START + timedelta(days=3))  # names the batch
    for hours in range(40):
        inspect(story, batch, hours, ("in_process", "final")[hours % 2], hours % 3)
    projections.kpis.catch_up()
    read = counting_stream_reads(ledger, monkeypatch)
    for hours in (50, 51, 200):  # before and after the complaint's filing
        inspect(story, batch, hours)
    story.send("rework.recorded", batch, {"units": 3, "scrapped": 0}, START + timedelta(hours=60))
    story.send("shipment.recorded", batch, {"customer": "K1", "quantity": 5, "delivery_id": "d"},
               START + timedelta(hours=70), department="sales")  # fmt: skip
    story.send("quality_cost.recorded", complaint,
               {"amount": "12.50", "currency": "CNY", "category": "internal_failure"},
               START + timedelta(hours=80))  # fmt: skip
    projections.kpis.catch_up()
    assert read == []
    agree(projections, ledger.last_position())


def test_a_correction_of_an_inspection_is_folded_and_one_of_the_registration_reads_its_stream(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    batch = story.batch(0, START)
    for hours in range(10):
        inspect(story, batch, hours, "in_process", 1)
    projections.kpis.catch_up()
    read = counting_stream_reads(ledger, monkeypatch)
    event_id, _, data = story.sent[3]
    story.send("event.corrected", batch,
               {"corrects_event_id": event_id, "reason": "r", "data": {**data, "defects": 0,
                "result": "pass"}}, START + timedelta(hours=20))  # fmt: skip
    projections.kpis.catch_up()
    assert read == []
    registration, _, data = story.sent[0]
    story.send("event.corrected", batch,
               {"corrects_event_id": registration, "reason": "r",
                "data": {**data, "quantity": 7}}, START + timedelta(hours=21),
               department="production")  # fmt: skip
    projections.kpis.catch_up()
    assert read == [("batch", batch)]  # what the batch counts as changed: taken again
    inspect(story, batch, 30, "in_process", 2)
    projections.kpis.catch_up()
    assert read == [("batch", batch)]
    agree(projections, ledger.last_position())


def test_an_attribution_flips_a_long_batchs_adjusted_rows_without_reading_the_batch(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    projections = Projections(ledger)
    story = Story(ledger, projections)
    batch = story.batch(0, START)
    complaint = story.complaint(0, START + timedelta(days=3))  # names the batch
    for hours in range(20):
        inspect(story, batch, hours, "in_process", hours % 2)
    projections.kpis.catch_up()
    read = counting_stream_reads(ledger, monkeypatch)
    for stream, department in ((complaint, "procurement"), (batch, "production")):
        story.send("cause.attributed", stream,
                   {"category": "material", "responsible_department": department,
                    "controllable": True}, START + timedelta(days=4))  # fmt: skip
        projections.kpis.catch_up()
        agree(projections, ledger.last_position())
    assert ("batch", batch) not in read


def test_a_long_batchs_notifications_answers_and_rectification_are_counted_without_reading_it(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's SLA and rectification rows are taken again from its stored case (its
    notifications, answers, plans, completions, verifications and their corrections) alone."""
    projections = Projections(ledger)
    story = Story(ledger, projections)
    batch = story.batch(0, START)
    for hours in range(30):
        inspect(story, batch, hours, "in_process", hours % 2)
    ask = {"to_department": "production", "action": "rectification_plan"}
    story.send("notification.sent", batch, ask, START + timedelta(hours=31))
    projections.kpis.catch_up()
    read = counting_stream_reads(ledger, monkeypatch)
    due = (START + timedelta(days=3)).isoformat()
    plan = story.send("rectification.planned", batch, {"plan": "p", "owner_id": "E2",
                      "due_at": due}, START + timedelta(hours=40),
                      department="production")  # fmt: skip
    projections.kpis.catch_up()
    agree(projections, ledger.last_position())
    story.send("notification.sent", batch, {"to_department": "production", "action": "verify"},
               START + timedelta(hours=41))  # fmt: skip
    story.send("event.corrected", batch, {"corrects_event_id": plan, "reason": "r", "data": {
               "plan": "p", "owner_id": "E3", "due_at": due}}, START + timedelta(hours=42),
               department="production")  # fmt: skip
    story.send("rectification.completed", batch, {"summary": "s"}, START + timedelta(hours=50),
               department="production")  # fmt: skip
    inspect(story, batch, 51)
    story.send("verification.recorded", batch, {"result": "pass"}, START + timedelta(hours=60))
    projections.kpis.catch_up()
    assert read == []
    agree(projections, ledger.last_position())
