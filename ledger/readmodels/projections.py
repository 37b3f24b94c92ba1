"""The stored read models of one ledger (the SLA board, the KPIs) and the runners that keep
them caught up with its events."""

from __future__ import annotations

from ledger.application import Ledger
from ledger.readmodels.kpis.view import KpiBoard
from ledger.readmodels.runner import READ_YOUR_WRITES_SECONDS, ProjectionRunner, views_of
from ledger.readmodels.sla.view import SlaBoard
from ledger.readmodels.trusted import trusted_sources


class Projections:
    """The stored read models of one ledger and the runners that keep them caught up; a read
    waits `read_wait` seconds at most for its read model to count the appends before it."""

    def __init__(self, ledger: Ledger, *, read_wait: float = READ_YOUR_WRITES_SECONDS) -> None:
        self.ledger = ledger
        self.views = views_of(ledger)
        self.board = ProjectionRunner(
            ledger, SlaBoard(ledger, lambda: trusted_sources(ledger)), self.views
        )
        self.kpis = ProjectionRunner(
            ledger, KpiBoard(ledger, lambda: trusted_sources(ledger), self.views), self.views
        )
        self.read_wait = read_wait

    @property
    def runners(self) -> dict[str, ProjectionRunner]:
        return {r.projector.name: r for r in (self.board, self.kpis)}

    @property
    def read_wait(self) -> float:
        return self.board.read_wait

    @read_wait.setter
    def read_wait(self, seconds: float) -> None:
        for runner in self.runners.values():
            runner.read_wait = seconds

    def catch_up(self) -> int:
        return sum(r.catch_up() for r in self.runners.values())

    def wait_for(self, runner: ProjectionRunner, cut: int) -> None:
        """Return once `runner`'s read model counts every event up to `cut` (503 after
        `read_wait` seconds, while it goes on catching up in the background)."""
        runner.wait_to_read(cut)

    def close(self) -> None:
        """Stop the background catch-ups (each after its page)."""
        for runner in self.runners.values():
            runner.close()
