"""The stored read models of one ledger (the SLA board, the KPIs) and the runners that keep
them caught up with its events."""

from __future__ import annotations

from ledger.application import Ledger
from ledger.domain.access import RESERVED_SOURCES
from ledger.readmodels.kpis.view import KpiBoard
from ledger.readmodels.runner import ProjectionRunner, views_of
from ledger.readmodels.sla.view import SlaBoard
from ledger.storage.keys import KeyStore

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
