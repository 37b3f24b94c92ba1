"""Catches read models up with the feed: each page's rows and its tracking position are written
in one transaction, so a read model counts every committed event exactly once."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from eventsourcing.persistence import IntegrityError

from ledger.application import Ledger, unavailable_on_outage
from ledger.domain.errors import ReadModelBehindError
from ledger.readmodels.facts import Fact
from ledger.readmodels.views import Views

log = logging.getLogger("ledger.projections")

PAGE = 1000
FIRST_PAGE = 100
# Retry-After of a read model behind: its measured rate, else this one (events/s), at most an hour.
FALLBACK_RATE = 1000.0
MAX_RETRY_AFTER = 3600
# A read counts every append acknowledged before it began, waiting this long at most for its
# read model to catch up (then 503 with Retry-After).
READ_YOUR_WRITES_SECONDS = 5.0
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
    """Runs one projector over the feed: live catch-up, rebuild from zero, both one code path.

    A read does not catch up itself: it asks for a catch-up in the background and waits for it
    (`wait_for`) a bounded time, so a read model far behind answers within that bound, goes on
    counting after the read gave up, and says how soon it expects to be done.
    """

    def __init__(
        self,
        ledger: Ledger,
        projector: Projector,
        views: Views | None = None,
        *,
        read_wait: float = READ_YOUR_WRITES_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.projector = projector
        self.views = views or views_of(ledger)
        self.read_wait = read_wait  # how long `wait_to_read` waits
        self._lock = threading.Lock()  # one catch-up at a time
        self._pages = threading.Condition()  # notified after every page: guards what follows
        self._counted = 0  # the position this process last saw the read model count
        self._reports = 0  # how many pages have told it so
        self._worker: threading.Thread | None = None
        self._wanted = False
        self._failure: Exception | None = None
        self._closed = False
        self.rate: float | None = None  # events/s of the last pages (a moving average)

    @property
    def position(self) -> int:
        with unavailable_on_outage():
            return self.views.tracked(self.projector.name)

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply every event appended before this call; return how many this call applied."""
        with self._lock:
            return self._catch_up(progress)

    def wait_to_read(self, cut: int) -> None:
        """`wait_for(cut, read_wait)`: what a read of the read model at position `cut` does."""
        self.wait_for(cut, self.read_wait)

    def wait_for(self, cut: int, timeout: float) -> None:
        """Return once the read model counts every event up to position `cut`; after `timeout`
        seconds ReadModelBehindError (503) saying how far behind it is, with a Retry-After
        from its measured rate. The catch-up runs in the background and goes on after that."""
        deadline = time.monotonic() + timeout
        with self._pages:
            reports = self._reports
        counted = self.position  # what is stored: another process may have counted more
        with self._pages:
            if self._reports == reports:  # nothing newer came from this process meanwhile
                self._counted = counted
            if self._counted >= cut:
                return
            self._start_worker()
            while self._counted < cut:
                if self._failure is not None:
                    raise self._failure
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    behind = cut - self._counted
                    raise ReadModelBehindError(self.projector.name, behind, self._eta(behind))
                self._pages.wait(remaining)

    def close(self) -> None:
        """Stop a background catch-up after its page (a read model is never left half-written)."""
        with self._pages:
            self._closed = True
            worker = self._worker
        if worker is not None:
            worker.join(timeout=30)

    def _eta(self, behind: int) -> int:
        """Whole seconds until `behind` events are counted at the measured rate (at least 1)."""
        rate = self.rate or FALLBACK_RATE
        return max(1, min(MAX_RETRY_AFTER, math.ceil(behind / rate)))

    def _start_worker(self) -> None:
        """Ask for a background catch-up (held: `_pages`)."""
        self._wanted = True
        self._failure = None
        if self._worker is None and not self._closed:
            self._worker = threading.Thread(
                target=self._work, name=f"catch-up-{self.projector.name}", daemon=True
            )
            self._worker.start()

    def _work(self) -> None:
        try:
            while True:
                with self._pages:
                    if not self._wanted or self._closed:
                        self._worker = None
                        return
                    self._wanted = False
                self.catch_up()
        except Exception as e:  # told to the waiting reads; the next read starts another
            log.warning("catching up %s failed: %s", self.projector.name, e)
            with self._pages:
                self._failure = e
                self._worker = None
                self._pages.notify_all()

    def _catch_up(self, progress: Progress | None) -> int:
        with unavailable_on_outage():
            target = self.ledger.last_position()
            position = self.position
            total = max(0, target - position)
            done = 0
            page = FIRST_PAGE  # a small first page: a rate is measured soon
            while position < target:
                with self._pages:
                    if self._closed and threading.current_thread() is self._worker:
                        return done
                began = time.monotonic()
                rows = self.ledger.feed(position, page)
                if not rows:
                    return done
                facts = [Fact.from_row(r) for r in rows]
                gathered = self.projector.gather(facts)
                try:
                    with self.views.transaction(commit=True) as cursor:
                        self.projector.apply(self.views, cursor, facts, gathered)
                        self.views.track(cursor, self.projector.name, facts[-1].position)
                    done += len(facts)
                    advanced, position = len(facts), facts[-1].position
                except IntegrityError:
                    self.projector.forget()  # another process applied this page first
                    now = self.position
                    advanced, position = now - position, now
                self._measured(advanced, time.monotonic() - began, position)
                page = PAGE
                if progress:
                    progress(done, total)
            return done

    def _measured(self, events: int, seconds: float, position: int) -> None:
        """Note a page's rate and tell the waiting reads where the read model stands."""
        if events > 0 and seconds > 0:
            rate = events / seconds
            self.rate = rate if self.rate is None else 0.7 * self.rate + 0.3 * rate
        with self._pages:
            self._counted = position
            self._reports += 1
            self._pages.notify_all()

    def rebuild(self, progress: Progress | None = None) -> int:
        """Empty the read model and apply the whole feed again."""
        with self._lock, self.views.transaction(commit=True) as cursor:
            self.projector.reset(self.views, cursor)
            self.views.reset_tracking(cursor, self.projector.name)
            self.projector.forget()
        self._measured(0, 0.0, 0)
        return self.catch_up(progress)
