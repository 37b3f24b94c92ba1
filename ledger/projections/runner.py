"""Catches read models up with the feed: each page's rows and its tracking position are written
in one transaction, so a read model counts every committed event exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError

from ledger.application import Ledger
from ledger.domain.errors import ReadModelBehindError
from ledger.projections.facts import Fact
from ledger.storage.views import Views

PAGE = 1000
Progress = Callable[[int, int], None]  # (events done, events to do)


class Projector(Protocol):
    """A read model: a name, how to empty it and how to apply a page of facts.

    `gather` reads what a page needs (other streams, policies) before the write transaction
    opens; `apply` then only writes, on the transaction's cursor. A read inside the write
    transaction would take a second pooled connection while holding the writer, which deadlocks
    the library's SQLite pool under concurrent writers.
    """

    name: str

    def reset(self, views: Views, cursor: Any) -> None: ...

    def gather(self, facts: list[Fact]) -> Any: ...

    def apply(self, views: Views, cursor: Any, facts: list[Fact], gathered: Any) -> None: ...

    def forget(self) -> None:
        """Drop in-memory state: another process wrote a page this one had read."""


def views_of(ledger: Ledger) -> Views:
    store: Any = ledger.store
    return Views(store.datastore, ledger.database.kind, ledger.factory.tracking_recorder())


class ProjectionRunner:
    """Runs one projector over the feed: live catch-up, rebuild from zero, both one code path."""

    def __init__(self, ledger: Ledger, projector: Projector, views: Views | None = None) -> None:
        self.ledger = ledger
        self.projector = projector
        self.views = views or views_of(ledger)
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        return self.views.tracked(self.projector.name)

    def catch_up(self, progress: Progress | None = None, timeout: float | None = None) -> int:
        """Apply every event appended before this call; return how many this call applied.

        With `timeout`, give up after that many seconds with ReadModelBehindError (503): a read
        waits a few seconds at most for its read model to count the appends before it.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise ReadModelBehindError(f"{self.projector.name} is busy catching up")
        try:
            return self._catch_up(progress, deadline)
        finally:
            self._lock.release()

    def _catch_up(self, progress: Progress | None, deadline: float | None) -> int:
        target = self.ledger.last_position()
        total = max(0, target - self.position)
        done = 0
        while True:
            start = self.position
            if start >= target:
                return done
            rows = self.ledger.feed(start, PAGE)
            if not rows:
                return done
            facts = [Fact.from_row(r) for r in rows]
            gathered = self.projector.gather(facts)
            try:
                with self.views.transaction(commit=True) as cursor:
                    self.projector.apply(self.views, cursor, facts, gathered)
                    self.views.track(cursor, self.projector.name, facts[-1].position)
            except IntegrityError:
                self.projector.forget()  # another process applied this page first
                continue
            done += len(facts)
            if progress:
                progress(done, total)
            if deadline is not None and time.monotonic() > deadline and self.position < target:
                raise ReadModelBehindError(
                    f"{self.projector.name} is {target - self.position} events behind"
                )

    def rebuild(self, progress: Progress | None = None) -> int:
        """Empty the read model and apply the whole feed again."""
        with self._lock, self.views.transaction(commit=True) as cursor:
            self.projector.reset(self.views, cursor)
            self.views.reset_tracking(cursor, self.projector.name)
            self.projector.forget()
        return self.catch_up(progress)
