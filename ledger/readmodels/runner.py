"""Catches read models up with the feed: each page's rows and its tracking position are written
in one short transaction, so a read model counts every committed event exactly once and an
append waits at most one page of a long catch-up."""

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
from ledger.readmodels.views import DeferredWrites, Views

log = logging.getLogger("ledger.projections")

PAGE = 1000  # events of one page at most
FIRST_PAGE = 100  # a small first page: a rate and a write time are measured soon
# How long one page's write transaction may take (LEDGER_PROJECTION_TXN_MS): on SQLite it holds
# the only write lock, so an append waits at most about this long for a catch-up.
TXN_SECONDS = 0.05
# How often a read model kept caught up in the background looks for new events.
POLL_SECONDS = 0.2
# How often a read waiting for a read model that another process counts looks at its position.
WATCH_SECONDS = 0.01
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


class PageSize:
    """How many events the next page takes: as many as the last page's write time says fit in
    `budget` seconds, at most twice the last page and `most`, at least one."""

    def __init__(self, budget: float, *, first: int = FIRST_PAGE, most: int = PAGE) -> None:
        self.budget = budget
        self.most = most
        self.size = min(first, most)

    def measured(self, events: int, seconds: float) -> None:
        """Note that a page of `events` took `seconds` to write: a page over the budget shrinks
        the next one to what fits; a full page within it lets the next grow. A short page (the
        end of the feed) says little, since a transaction's fixed cost dominates it."""
        if events <= 0:
            return
        fits = self.most if seconds <= 0 else int(events * self.budget / seconds)
        if seconds > self.budget:
            self.size = max(1, min(self.size, fits))
        elif events >= self.size:
            self.size = max(1, min(self.most, 2 * self.size, fits))


class _Overtaken(IntegrityError):
    """The read model counts another position than the page starts from: another process (or a
    rebuild) wrote it since this one read where it stood."""


class ProjectionRunner:
    """Runs one projector over the feed: live catch-up, rebuild from zero, both one code path.

    A read does not catch up itself: it asks for a catch-up in the background and waits for it
    (`wait_for`) a bounded time, so a read model far behind answers within that bound, goes on
    counting after the read gave up, and says how soon it expects to be done. `follow` keeps
    the read model caught up in the background without being asked; `watch` leaves that to
    another process (`ledger projections run`), and a read then only looks, every few
    milliseconds, at the position the read model has stored.
    """

    def __init__(
        self,
        ledger: Ledger,
        projector: Projector,
        views: Views | None = None,
        *,
        read_wait: float = READ_YOUR_WRITES_SECONDS,
        txn_budget: float = TXN_SECONDS,
    ) -> None:
        self.ledger = ledger
        self.projector = projector
        self.views = views or views_of(ledger)
        self.read_wait = read_wait  # how long `wait_to_read` waits
        self.pages = PageSize(txn_budget)
        self._lock = threading.Lock()  # one catch-up at a time
        self._pages = threading.Condition()  # notified after every page: guards what follows
        self._counted = 0  # the position this process last saw the read model count
        self._reports = 0  # how many pages have told it so
        self._worker: threading.Thread | None = None
        self._wanted = False
        self._interval: float | None = None  # polling, when following
        self._watch: float | None = None  # looking at the stored position, when watching
        self._failure: Exception | None = None
        self._closed = False
        self.rate: float | None = None  # events/s of the last pages (a moving average)

    @property
    def name(self) -> str:
        return self.projector.name

    @property
    def position(self) -> int:
        with unavailable_on_outage():
            return self.views.tracked(self.projector.name)

    @property
    def counted(self) -> int:
        """The position this process last saw the read model count (no database read)."""
        with self._pages:
            return self._counted

    def catch_up(self, progress: Progress | None = None) -> int:
        """Apply every event appended before this call; return how many this call applied.
        Once the runner is stopped it returns after the page it is writing."""
        with self._lock:
            return self._catch_up(progress)

    def follow(self, interval: float = POLL_SECONDS) -> None:
        """Keep the read model caught up in the background, looking for new events every
        `interval` seconds (and at once when a read waits), until `close`."""
        with self._pages:
            self._interval = interval
            self._start_worker()

    def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Leave the catch-up to another process: a read waits for the position stored by it,
        looking every `interval` seconds, and starts no catch-up of its own unless the read
        model did not move at all while the read waited (no worker is counting it)."""
        with self._pages:
            self._watch = interval

    def wait_to_read(self, cut: int) -> None:
        """`wait_for(cut, read_wait)`: what a read of the read model at position `cut` does."""
        self.wait_for(cut, self.read_wait)

    def wait_for(self, cut: int, timeout: float) -> None:
        """Return once the read model counts every event up to position `cut`; after `timeout`
        seconds ReadModelBehindError (503) saying how far behind it is, with a Retry-After
        from its measured rate. The catch-up runs in the background and goes on after that."""
        deadline = time.monotonic() + timeout
        if self._watch is not None:
            self._look_until(cut, deadline, timeout)
            return
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

    def _look_until(self, cut: int, deadline: float, timeout: float) -> None:
        """`wait_for` of a watching runner: look at the stored position until it reaches `cut`.
        A read model that did not move during a whole wait has no worker: its catch-up then
        starts here, in the background, and the read is told to come back."""
        began, first = time.monotonic(), self.position
        counted, interval = first, self._watch or WATCH_SECONDS
        while counted < cut:
            now = time.monotonic()
            if now >= deadline:
                if counted == first and now - began >= timeout:
                    log.warning("no worker counts %s: catching it up here", self.projector.name)
                    with self._pages:
                        self._start_worker()
                elif now > began and counted > first:
                    self.rate = (counted - first) / (now - began)
                behind = cut - counted
                raise ReadModelBehindError(self.projector.name, behind, self._eta(behind))
            time.sleep(min(interval, deadline - now))
            counted = self.position
        with self._pages:
            self._counted = max(self._counted, counted)

    def stop(self) -> None:
        """Ask every catch-up to return after its page, and the background one to end."""
        with self._pages:
            self._closed = True
            self._pages.notify_all()

    def close(self) -> None:
        """Stop, and wait for a background catch-up to finish its page (a read model is never
        left half-written)."""
        self.stop()
        with self._pages:
            worker = self._worker
        if worker is not None and worker is not threading.current_thread():
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
        self._pages.notify_all()  # a following worker waiting for its next poll starts now

    def _work(self) -> None:
        while self._next_turn():
            try:
                self.catch_up()
                with self._pages:
                    self._failure = None
            except Exception as e:  # told to the waiting reads; a follower tries again
                with self._pages:
                    if self._failure is None:
                        log.warning("catching up %s failed: %s", self.projector.name, e)
                    self._failure = e
                    self._pages.notify_all()
                    if self._interval is None:  # the next read starts another
                        self._worker = None
                        return

    def _next_turn(self) -> bool:
        """Wait until a read asks for a catch-up or, when following, the next poll is due;
        False (and the worker ends) once stopped or, when not following, nothing is asked."""
        with self._pages:
            if not self._wanted and not self._closed and self._interval is not None:
                self._pages.wait(self._interval)
            if self._closed or not (self._wanted or self._interval is not None):
                self._worker = None
                return False
            self._wanted = False
            return True

    def _catch_up(self, progress: Progress | None) -> int:
        with unavailable_on_outage():
            target = self.ledger.last_position()
            position = self.position
            self._measured(0, 0.0, position)  # another process may have counted it all
            total = max(0, target - position)
            done = 0
            while position < target and not self._closed:
                began = time.monotonic()
                rows = self.ledger.feed(position, self.pages.size)
                if not rows:
                    break
                facts = [Fact.from_row(r) for r in rows]
                try:
                    self.pages.measured(len(facts), self._write(position, facts))
                    done += len(facts)
                    advanced, position = len(facts), facts[-1].position
                except IntegrityError:
                    self.projector.forget()  # another process applied this page first
                    now = self.position
                    advanced, position = max(0, now - position), now
                except BaseException:
                    self.projector.forget()  # what `gather` noted of an unwritten page
                    raise
                self._measured(advanced, time.monotonic() - began, position)
                if progress:
                    progress(done, total)
            return done

    def _write(self, start: int, facts: list[Fact]) -> float:
        """Apply a page that starts after position `start`, with its tracking position, in
        one transaction; return how long the transaction took. What the page needs is read
        and computed before it opens (`gather`, then `apply` on DeferredWrites), so the write
        lock is held only for writing; the claim in it refuses a page whose reads another
        process's page made stale."""
        gathered = self.projector.gather(facts)
        with self.views.transaction(commit=False) as reading:
            writes = DeferredWrites(reading)
            self.projector.apply(self.views, writes, facts, gathered)
        with self.views.transaction(commit=True) as cursor:
            began = time.monotonic()
            if self._claim(cursor) != start:
                raise _Overtaken(f"{self.projector.name} no longer counts position {start}")
            writes.replay(cursor)
            self.views.track(cursor, self.projector.name, facts[-1].position)
        return time.monotonic() - began

    def _claim(self, cursor: Any) -> int:
        """The position the read model counts, read in its write transaction once no other
        writer of the read model can change it until the transaction ends: on SQLite the
        transaction is the database's only writer (BEGIN IMMEDIATE), on PostgreSQL it takes
        the read model's advisory lock. The tracking table alone would accept a page that
        overlaps one another process wrote, if it ends further on."""
        name = self.projector.name
        if self.views.kind == "postgresql":
            schema = getattr(self.views.datastore, "schema", "")
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{schema}.{name}"])
        stored: int | None = self.views.tracking._max_tracking_id(name, cursor)
        return stored or 0

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
