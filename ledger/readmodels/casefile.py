"""Gathers the streams a read needs from the event store, as of a position (a cut): a complaint's
or batch's case file, and every stream holding an event of some types (plans, policies)."""

from __future__ import annotations

from datetime import datetime

from ledger.application import Ledger
from ledger.domain.errors import StreamNotFoundError
from ledger.domain.time import format_time
from ledger.readmodels.facts import Fact, linked_batches, material_lots


class CaseFiles:
    """Reads the streams a dispute spans; every read is cut at a position."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def facts(self, stream_type: str, stream_id: str, cut: int) -> list[Fact]:
        return [
            Fact.from_row(r)
            for r in self.ledger.stream_rows(stream_type, stream_id)
            if r.position <= cut
        ]

    def batch_facts(self, batch_id: str, cut: int) -> list[Fact]:
        """A batch's events and those of its material lots, each stream once (a lot named twice,
        or the batch itself among its lots, adds no event twice)."""
        batch = self.facts("batch", batch_id, cut)
        lots = [lot for lot in dict.fromkeys(material_lots(batch)) if lot != batch_id]
        return batch + [f for lot in lots for f in self.facts("batch", lot, cut)]

    def complaint_facts(self, complaint_id: str, cut: int) -> list[Fact]:
        """A complaint's events, those of the batches it names and of their material lots."""
        complaint = self.facts("complaint", complaint_id, cut)
        if not complaint:
            raise self.not_found("complaint", complaint_id)
        linked = [f for b in linked_batches(complaint) for f in self.batch_facts(b, cut)]
        return _unique(complaint + linked)

    def not_found(self, stream_type: str, stream_id: str) -> StreamNotFoundError:
        """404 for a stream with no event counted: never written, or written after the cut."""
        rows = self.ledger.stream_rows(stream_type, stream_id)
        if not rows:
            return StreamNotFoundError(f"no {stream_type} {stream_id!r}")
        return self._recorded_later(stream_type, stream_id, rows[0].recorded_at)

    @staticmethod
    def _recorded_later(
        stream_type: str, stream_id: str, recorded_at: datetime
    ) -> StreamNotFoundError:
        first = format_time(recorded_at)
        return StreamNotFoundError(
            f"{stream_type} {stream_id!r} was not recorded yet at that time: "
            f"its first event was recorded at {first}"
        )


def _unique(facts: list[Fact]) -> list[Fact]:
    """Each event once, even when two named batches share a material lot."""
    by_id = {f.event_id: f for f in facts}
    return list(by_id.values())


def facts_of_streams_with(ledger: Ledger, types: tuple[str, ...], upto: int) -> list[Fact]:
    """The events, up to position `upto`, of every stream that holds an event of one of `types`
    (all of each stream's events, corrections included), read in one query."""
    rows = ledger.streams_rows(ledger.streams_with(*types))
    return [Fact.from_row(r) for found in rows.values() for r in found if r.position <= upto]


def policy_facts(ledger: Ledger, upto: int) -> list[Fact]:
    """The events of every plan stream that holds a `policy.set`: what `PolicyHistory` needs."""
    return facts_of_streams_with(ledger, ("policy.set",), upto)
