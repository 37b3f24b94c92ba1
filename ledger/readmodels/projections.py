"""The stored read models of one ledger (the SLA board, the KPIs, the case files, the Merkle
tree) and the runners that keep them caught up with its events."""

from __future__ import annotations

from ledger.application import Ledger
from ledger.readmodels.casefiles.view import CaseFileBoard
from ledger.readmodels.digest.view import MerkleTree
from ledger.readmodels.kpis.view import KpiBoard
from ledger.readmodels.runner import (
    POLL_SECONDS,
    READ_YOUR_WRITES_SECONDS,
    TXN_SECONDS,
    ProjectionRunner,
    views_of,
)
from ledger.readmodels.sla.view import SlaBoard
from ledger.readmodels.trusted import trusted_sources


class Projections:
    """The stored read models of one ledger and the runners that keep them caught up; a read
    waits `read_wait` seconds at most for its read model to count the appends before it, and
    a page's write transaction takes about `txn_budget` seconds at most."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        read_wait: float = READ_YOUR_WRITES_SECONDS,
        txn_budget: float = TXN_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.views = views_of(ledger)
        self.board = ProjectionRunner(
            ledger, SlaBoard(ledger, lambda: trusted_sources(ledger)), self.views,
            txn_budget=txn_budget,
        )  # fmt: skip
        self.kpis = ProjectionRunner(
            ledger, KpiBoard(ledger, lambda: trusted_sources(ledger), self.views), self.views,
            txn_budget=txn_budget,
        )  # fmt: skip
        self.casefiles = ProjectionRunner(
            ledger, CaseFileBoard(ledger, self.views), self.views, txn_budget=txn_budget
        )
        self.digest = ProjectionRunner(
            ledger, MerkleTree(self.views), self.views, txn_budget=txn_budget
        )
        self.read_wait = read_wait

    @property
    def runners(self) -> dict[str, ProjectionRunner]:
        return {r.projector.name: r for r in (self.board, self.kpis, self.casefiles, self.digest)}

    @property
    def read_wait(self) -> float:
        return self.board.read_wait

    @read_wait.setter
    def read_wait(self, seconds: float) -> None:
        for runner in self.runners.values():
            runner.read_wait = seconds

    def catch_up(self) -> int:
        return sum(r.catch_up() for r in self.runners.values())

    def follow(self, interval: float = POLL_SECONDS) -> None:
        """Keep every read model caught up in the background, each in its own thread, looking
        for new events every `interval` seconds, until `close`."""
        for runner in self.runners.values():
            runner.follow(interval)

    def watch(self) -> None:
        """Leave the catch-up to another process (`ledger projections run`): reads wait for the
        positions it stores."""
        for runner in self.runners.values():
            runner.watch()

    def wait_for(self, runner: ProjectionRunner, cut: int) -> None:
        """Return once `runner`'s read model counts every event up to `cut` (503 after
        `read_wait` seconds, while it goes on catching up in the background)."""
        runner.wait_to_read(cut)

    def stop(self) -> None:
        """Ask every catch-up to return after its page, without waiting for it."""
        for runner in self.runners.values():
            runner.stop()

    def close(self) -> None:
        """Stop the background catch-ups (each after its page)."""
        for runner in self.runners.values():
            runner.close()
