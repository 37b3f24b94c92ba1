"""The composition root: every entry point (the API, the CLI, the SLA watcher, the projection
commands, the demo, the tests) builds the ledger's parts here, from the settings and one clock.

    database → migrate → durability check → Ledger → Projections + KeyStore

The clock is the one source of "now" (the ledger's rules, the SLA board, the watcher, the keys'
times); it defaults to the real time. A database that would not keep what it acknowledges
(PostgreSQL with fsync=off) is refused before anything is written to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ledger.application import Ledger
from ledger.domain.checkpoint import Signer
from ledger.domain.time import Clock, utc_now
from ledger.readmodels.projections import Projections
from ledger.settings import Settings
from ledger.storage.database import Database
from ledger.storage.keys import KeyStore
from ledger.storage.migrate import migrate
from ledger.storage.signing_key import load_or_create


@dataclass(frozen=True)
class Parts:
    """What an entry point works with: the ledger, its read models and its API keys."""

    ledger: Ledger
    projections: Projections
    keys: KeyStore

    @property
    def clock(self) -> Clock:
        return self.ledger.clock

    def close(self) -> None:
        """Stop the read models' background catch-ups (each after its page), then the ledger."""
        self.projections.close()
        self.ledger.close()


def open_ledger(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    database: Database | None = None,
    pool_size: int | None = None,
) -> Ledger:
    """Migrate the configured database (or `database`), refuse one that would lose what it
    commits (DurabilityError), and open the ledger on it."""
    database = database or Database.from_url(settings.database_url)
    migrate(database)
    ledger = Ledger(
        database,
        clock=clock,
        pool_size=pool_size or settings.pool_size,
        append_wait=settings.append_wait_seconds,
    )
    try:
        ledger.store.check_durability()
    except BaseException:
        ledger.close()
        raise
    return ledger


def checkpoint_signer(settings: Settings) -> Signer:
    """The key that signs the digest's checkpoints, from LEDGER_CHECKPOINT_KEY_FILE (made there
    on first use; SigningKeyError if the file cannot be used)."""
    return load_or_create(Path(settings.checkpoint_key_file), settings.checkpoint_origin)


def assemble(ledger: Ledger, settings: Settings) -> Parts:
    """The read models and the key store of an open ledger."""
    projections = Projections(
        ledger,
        read_wait=settings.read_wait_seconds,
        txn_budget=settings.projection_txn_ms / 1000,
    )
    return Parts(ledger, projections, KeyStore.of(ledger.store, ledger.database.kind))


def build(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    database: Database | None = None,
    pool_size: int | None = None,
) -> Parts:
    """Every part, on the configured database (see `open_ledger`)."""
    ledger = open_ledger(settings, clock=clock, database=database, pool_size=pool_size)
    return assemble(ledger, settings)


@contextmanager
def opened(
    settings: Settings, *, clock: Clock = utc_now, pool_size: int | None = None
) -> Iterator[Parts]:
    """`build`, closed afterwards: how a command of the CLI holds the ledger."""
    parts = build(settings, clock=clock, pool_size=pool_size)
    try:
        yield parts
    finally:
        parts.close()
