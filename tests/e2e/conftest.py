"""Fixtures of the end-to-end tests that put a wire-protocol proxy in front of PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger import bootstrap
from ledger.application import Ledger
from ledger.settings import Settings
from ledger.storage.database import Database
from ledger.storage.migrate import migrate
from tests.conftest import FrozenClock, pg_database
from tests.support.proxy import PgProxy


@pytest.fixture
def proxy() -> Iterator[PgProxy]:
    upstream = pg_database("unused")
    with PgProxy(upstream.host, upstream.port) as proxy:
        yield proxy


@pytest.fixture
def proxied(pg_schema: str, proxy: PgProxy, clock: FrozenClock) -> Iterator[Ledger]:
    """A ledger whose every connection to PostgreSQL runs through the proxy."""
    db = pg_database(pg_schema)
    migrate(db)  # directly, not through the proxy
    url = f"postgresql://{db.user}@127.0.0.1:{proxy.port}/{db.name}?schema={pg_schema}"
    ledger = bootstrap.open_ledger(
        Settings(), clock=clock, database=Database.from_url(url), pool_size=2
    )
    try:
        yield ledger
    finally:
        ledger.close()
