"""Gathers a complaint's or batch's streams from the event store, as of a recorded time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.domain.access import RESERVED_SOURCES
from ledger.domain.errors import StreamNotFoundError
from ledger.domain.time import format_time
from ledger.projections.board import SlaBoard, board_items
from ledger.projections.facts import Fact, policy_facts, sealed
from ledger.projections.kpi_board import KpiBoard
from ledger.projections.responsibility import responsibility
from ledger.projections.runner import ProjectionRunner, views_of
from ledger.projections.sla import PolicyHistory, settle, sla_items
from ledger.projections.timeline import linked_batches, material_lots, timeline
from ledger.storage.keys import KeyStore


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
            raise self._not_found("complaint", complaint_id)
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
            raise self._not_found("batch", batch_id)
        return timeline({"batch_id": batch_id}, facts, cut)

    def _not_found(self, stream_type: str, stream_id: str) -> StreamNotFoundError:
        """404 for a stream with no event counted: never written, or written after the cut."""
        rows = self.ledger.stream_rows(stream_type, stream_id)
        if not rows:
            return StreamNotFoundError(f"no {stream_type} {stream_id!r}")
        first = format_time(rows[0].recorded_at)
        return StreamNotFoundError(
            f"{stream_type} {stream_id!r} was not recorded yet at that time: "
            f"its first event was recorded at {first}"
        )


def _unique(facts: list[Fact]) -> list[Fact]:
    """Each event once, even when two named batches share a material lot."""
    by_id = {f.event_id: f for f in facts}
    return list(by_id.values())


# Sources whose events count at their occurred_at for SLAs besides admin keys: the ledger itself
# and the administrative command-line paths (the demo, bulk imports of old records). Key names
# are never reused, so a source keeps its role for the life of the ledger: replays agree.
TRUSTED_SOURCES = RESERVED_SOURCES  # no key may take these names
# A projection read counts every append acknowledged before it began, waiting this long at most
# for its read model to catch up (then 503 with Retry-After).
READ_YOUR_WRITES_SECONDS = 5.0


def trusted_sources(ledger: Ledger) -> frozenset[str]:
    """Sources whose events count at their occurred_at: admin keys and the ledger's own paths."""
    keys = KeyStore.of(ledger.store, ledger.database.kind)
    return TRUSTED_SOURCES | frozenset(k.name for k in keys.list() if k.role == "admin")


class Projections:
    """The stored read models of one ledger and the runners that keep them caught up; a read
    waits `read_wait` seconds at most for its read model to count the appends before it."""

    def __init__(self, ledger: Ledger, *, read_wait: float = READ_YOUR_WRITES_SECONDS) -> None:
        self.ledger = ledger
        self.read_wait = read_wait
        self.views = views_of(ledger)
        self.board = ProjectionRunner(
            ledger, SlaBoard(ledger, lambda: trusted_sources(ledger)), self.views
        )
        self.kpis = ProjectionRunner(
            ledger, KpiBoard(ledger, lambda: trusted_sources(ledger), self.views), self.views
        )

    @property
    def runners(self) -> dict[str, ProjectionRunner]:
        return {r.projector.name: r for r in (self.board, self.kpis)}

    def catch_up(self) -> int:
        return sum(r.catch_up() for r in self.runners.values())

    def wait_for(self, runner: ProjectionRunner, cut: int) -> None:
        """Return once `runner`'s read model counts every event up to `cut` (503 after
        `read_wait` seconds, while it goes on catching up in the background)."""
        runner.wait_for(cut, self.read_wait)

    def close(self) -> None:
        """Stop the background catch-ups (each after its page)."""
        for runner in self.runners.values():
            runner.close()


class Disputes(CaseFiles):
    """SLA items and responsibility chains, computed from the counted events."""

    def __init__(self, projections: Projections, now: datetime) -> None:
        super().__init__(projections.ledger)
        self.projections = projections
        self.now = now

    def items(
        self, streams: list[tuple[str, str]], cut: int, now: datetime
    ) -> list[dict[str, Any]]:
        """Items of a few streams, computed from their events (the same pure function)."""
        policies = PolicyHistory(policy_facts(self.ledger, cut))
        trusted = trusted_sources(self.ledger)
        return [
            settle(item, now)
            for key in streams
            for item in sla_items(self.facts(*key, cut), policies, trusted)
        ]

    def sla_board(
        self, state: str | None, department: str | None, as_of: datetime | None
    ) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        self.projections.wait_for(self.projections.board, cut)
        now = as_of or self.now
        items = board_items(self.projections.views, cut, now, department, state)
        return sealed({"items": items, "position": cut})

    def complaint_responsibility(self, complaint_id: str, as_of: datetime | None) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        now = as_of or self.now
        facts = self.complaint_facts(complaint_id, cut)
        streams = sorted({f.stream for f in facts if f.type == "notification.sent"})
        items = self.items(streams, cut, now)
        return responsibility(complaint_id, facts, items, now, cut)
