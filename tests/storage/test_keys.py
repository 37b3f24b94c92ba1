"""API keys at rest: only a hash, found by a public id, compared in constant time."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg
import pytest

from ledger.application import Ledger
from ledger.domain.access import KeyRefusedError
from ledger.storage.database import Database
from ledger.storage.keys import KeyNameTakenError, KeyStore, hash_key, key_id_of
from tests.conftest import _admin_conninfo


def stored_rows(database: Database) -> str:
    if database.kind == "sqlite":
        with sqlite3.connect(database.path) as conn:
            return repr(conn.execute("SELECT * FROM api_keys").fetchall())
    with psycopg.connect(_admin_conninfo()) as conn:
        return repr(conn.execute(f"SELECT * FROM {database.schema}.api_keys").fetchall())


def test_only_a_hash_of_a_key_is_stored(database: Database, keys: KeyStore, clock: Any) -> None:
    key, made = keys.create("mes-1", "integrator", frozenset({"production"}), clock())
    secret = key.rsplit("_", 1)[1]
    rows = stored_rows(database)
    assert secret not in rows and key not in rows
    assert hash_key(key) in rows
    assert made.key_id == key_id_of(key) and made.key_id in rows


def test_a_key_authenticates_until_it_is_revoked(keys: KeyStore, clock: Any) -> None:
    key, _ = keys.create("mes-1", "integrator", frozenset({"production", "quality"}), clock())
    found = keys.authenticate(key)
    assert found is not None
    assert (found.name, found.role, found.departments) == (
        "mes-1",
        "integrator",
        frozenset({"production", "quality"}),
    )
    assert keys.authenticate(key[:-1] + ("x" if key[-1] != "x" else "y")) is None
    assert keys.authenticate("ql_" + "0" * 12 + "_" + "A" * 43) is None
    assert keys.authenticate("garbage") is None
    assert keys.revoke("mes-1", clock())
    assert keys.authenticate(key) is None
    (listed,) = keys.list()
    assert listed.revoked and listed.revoked_at == clock()


def test_a_name_is_never_reused_even_after_revocation(keys: KeyStore, clock: Any) -> None:
    keys.create("erp", "integrator", frozenset({"procurement"}), clock())
    keys.revoke("erp", clock())
    with pytest.raises(KeyNameTakenError):
        keys.create("erp", "admin", frozenset(), clock())


def test_keys_are_random_and_well_formed(keys: KeyStore, clock: Any) -> None:
    made = {keys.create(f"k{i}", "hr", frozenset(), clock())[0] for i in range(5)}
    assert len(made) == 5
    assert all(key_id_of(k) is not None for k in made)
    assert not keys.is_empty()


@pytest.mark.parametrize("name", ["ledger", "demo", "import", "Import", "LEDGER"])
def test_no_key_takes_a_name_the_ledger_stamps_on_its_own_events(
    name: str, keys: KeyStore, clock: Any
) -> None:
    with pytest.raises(KeyRefusedError, match="reserved"):
        keys.create(name, "admin", frozenset(), clock())
    assert keys.list() == []


@pytest.mark.parametrize(
    "role, departments, refused",
    [
        ("hr", {"production"}, "integrator keys only"),
        ("director", {"quality"}, "integrator keys only"),
        ("admin", {"management"}, "integrator keys only"),
        ("integrator", set(), "needs the departments"),
        ("integrator", {"Production"}, "slug"),
        ("integrator", {"production", "quality control"}, "slug"),
        ("integrator", {"\u0662\u0660"}, "slug"),  # Arabic-Indic digits
        ("integrator", {"production\n"}, "slug"),
        ("boss", set(), "one of"),
    ],
)
def test_departments_bind_integrator_keys_only_and_are_slugs(
    role: str, departments: set[str], refused: str, keys: KeyStore, clock: Any
) -> None:
    with pytest.raises(KeyRefusedError, match=refused):
        keys.create("k", role, frozenset(departments), clock())
    assert keys.list() == []


def test_a_key_revoked_through_another_store_fails_its_very_next_lookup(
    database: Database, keys: KeyStore, clock: Any
) -> None:
    key, _ = keys.create("mes-1", "integrator", frozenset({"production"}), clock())
    assert keys.authenticate(key) is not None
    other = Ledger(database, clock=clock, pool_size=1)  # as `ledger keys revoke` would
    try:
        assert KeyStore.of(other.store, database.kind).revoke("mes-1", clock())
    finally:
        other.close()
    assert keys.authenticate(key) is None
