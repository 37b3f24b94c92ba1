"""The eventsourcing library's own recorder contract, run against the ledger's recorders on
databases built by the ledger's migrations (not by the library's CREATE TABLE), on SQLite and on
PostgreSQL.

Which parts of `eventsourcing.tests.persistence` apply:
- `ApplicationRecorderTestCase` and `NonInterleavingNotificationIDsBaseCase`: the ledger's
  application recorders (`LedgerSQLiteRecorder`, `LedgerPostgresRecorder`), called as the
  library calls them and as the ledger calls them (with `event_ids` and `stamps`).
- `TrackingRecorderTestCase`: the library's tracking recorders on the migrated tracking tables,
  which the read models' positions are written to.
- Not `AggregateRecorderTestCase` nor `ProcessRecorderTestCase`: the ledger has neither kind
  of recorder (its read models write their rows and their tracking in one transaction of their
  own, `ledger/readmodels/views.py`).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    StoredEvent,
    TrackingRecorder,
)
from eventsourcing.tests import persistence as contract
from eventsourcing.utils import Environment

from ledger.application import Ledger
from ledger.storage.database import Database
from ledger.storage.migrate import migrate
from tests.conftest import pg_database


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, migrated once: each test gets a copy."""
    path = tmp_path_factory.mktemp("migrated") / "ledger.sqlite"
    migrate(Database.from_url(f"sqlite:///{path}"))
    assert not path.with_name(path.name + "-wal").exists()  # the file holds it all
    return path


class OnMigratedDatabase:
    """Gives each test a freshly migrated database of `kind`, and closes what it opened."""

    kind: ClassVar[str]
    database: Database
    factories: list[InfrastructureFactory[Any]]

    @pytest.fixture(autouse=True)
    def _migrated_database(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
        if self.kind == "sqlite":
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), tmp_path / "ledger.sqlite")
            self.database = Database.from_url(f"sqlite:///{tmp_path}/ledger.sqlite")
        else:
            self.database = pg_database(request.getfixturevalue("pg_schema"))
            migrate(self.database)
        self.factories = []
        running = set(threading.enumerate())
        yield
        # test_concurrent_no_conflicts returns without joining its two reader threads: closing
        # the pool under a reader still in sqlite3 crashed the interpreter (segmentation fault).
        for thread in set(threading.enumerate()) - running:
            if not thread.daemon:  # the PostgreSQL pool's workers are daemons
                thread.join(timeout=10)
        for factory in self.factories:
            factory.close()

    def factory(self) -> InfrastructureFactory[Any]:
        """The infrastructure the ledger's application builds on this database."""
        env = Environment(Ledger.name, self.database.library_env(pool_size=10))
        factory = InfrastructureFactory.construct(env)
        self.factories.append(factory)
        return factory


def as_the_ledger_calls_it(recorder: ApplicationRecorder) -> ApplicationRecorder:
    """The recorder, its inserts made with an `event_id` per event and the `stamps` list, as
    `Ledger.append_records` makes them; each insert checks that every event got its stamp."""
    insert = recorder.insert_events

    def insert_events(stored_events: Sequence[StoredEvent], **kwargs: Any) -> Any:
        stamps: list[Any] = []
        ids = [str(uuid4()) for _ in stored_events]
        positions = insert(stored_events, event_ids=ids, stamps=stamps, **kwargs)
        assert len(stamps) == len(stored_events)
        assert stamps == sorted(stamps)
        return positions

    recorder.insert_events = insert_events  # type: ignore[method-assign]
    return recorder


# The contracts, each run below on both back-ends (the library's TestCase comes last: these
# classes are not collected on their own).


class ApplicationRecorderContract(OnMigratedDatabase):
    with_event_ids: ClassVar[bool] = False

    def create_recorder(self) -> ApplicationRecorder:
        recorder = self.factory().application_recorder()
        return as_the_ledger_calls_it(recorder) if self.with_event_ids else recorder


class NonInterleavingContract(OnMigratedDatabase):
    def create_recorder(self) -> ApplicationRecorder:
        return as_the_ledger_calls_it(self.factory().application_recorder())


class TrackingRecorderContract(OnMigratedDatabase):
    def create_recorder(self) -> TrackingRecorder:
        recorder: TrackingRecorder = self.factory().tracking_recorder()
        return recorder


class TestSQLiteApplicationRecorder(
    ApplicationRecorderContract, contract.ApplicationRecorderTestCase
):
    kind = "sqlite"


class TestSQLiteApplicationRecorderWithEventIds(
    ApplicationRecorderContract, contract.ApplicationRecorderTestCase
):
    kind = "sqlite"
    with_event_ids = True


class TestSQLiteNonInterleavingPositions(
    NonInterleavingContract, contract.NonInterleavingNotificationIDsBaseCase
):
    kind = "sqlite"


class TestSQLiteTrackingRecorder(TrackingRecorderContract, contract.TrackingRecorderTestCase):
    kind = "sqlite"


@pytest.mark.postgres
class TestPostgresApplicationRecorder(
    ApplicationRecorderContract, contract.ApplicationRecorderTestCase
):
    kind = "postgresql"


@pytest.mark.postgres
class TestPostgresApplicationRecorderWithEventIds(
    ApplicationRecorderContract, contract.ApplicationRecorderTestCase
):
    kind = "postgresql"
    with_event_ids = True


@pytest.mark.postgres
class TestPostgresNonInterleavingPositions(
    NonInterleavingContract, contract.NonInterleavingNotificationIDsBaseCase
):
    kind = "postgresql"


@pytest.mark.postgres
class TestPostgresTrackingRecorder(TrackingRecorderContract, contract.TrackingRecorderTestCase):
    kind = "postgresql"
