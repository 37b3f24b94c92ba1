"""Gathers a complaint's or batch's streams from the event store, as of a recorded time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.domain.errors import StreamNotFoundError
from ledger.projections.facts import Fact
from ledger.projections.timeline import linked_batches, material_lots, timeline


class CaseFiles:
    """Reads the streams a dispute spans; every read is cut at `as_of` (recorded time)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def facts(self, stream_type: str, stream_id: str, cut: int) -> list[Fact]:
        return [
            Fact.from_row(r)
            for r in self.ledger.stream_rows(stream_type, stream_id)
            if r.position <= cut
        ]

    def batch_facts(self, batch_id: str, cut: int) -> list[Fact]:
        """A batch's events and those of its material lots."""
        batch = self.facts("batch", batch_id, cut)
        lots = [f for lot in material_lots(batch) for f in self.facts("batch", lot, cut)]
        return batch + lots

    def complaint_facts(self, complaint_id: str, cut: int) -> list[Fact]:
        """A complaint's events, those of the batches it names and of their material lots."""
        complaint = self.facts("complaint", complaint_id, cut)
        if not complaint:
            raise StreamNotFoundError(f"no complaint {complaint_id!r}")
        linked = [f for b in linked_batches(complaint) for f in self.batch_facts(b, cut)]
        return _unique(complaint + linked)

    def complaint_timeline(self, complaint_id: str, as_of: datetime | None) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        facts = self.complaint_facts(complaint_id, cut)
        return timeline({"complaint_id": complaint_id}, facts, cut)

    def batch_timeline(self, batch_id: str, as_of: datetime | None) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        facts = self.batch_facts(batch_id, cut)
        if not facts:
            raise StreamNotFoundError(f"no batch {batch_id!r}")
        return timeline({"batch_id": batch_id}, facts, cut)


def _unique(facts: list[Fact]) -> list[Fact]:
    """Each event once, even when two named batches share a material lot."""
    by_id = {f.event_id: f for f in facts}
    return list(by_id.values())
