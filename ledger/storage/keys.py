"""API keys: made here, stored as a hash beside the events, checked in constant time.

A key reads `ql_<key_id>_<secret>`. `key_id` is public: it finds the row and may appear in
listings. Only the SHA-256 of the whole key is stored; SHA-256 suffices because the secret has 256
random bits (a slow hash protects low-entropy passwords, which these are not).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from ledger.domain.access import check_key
from ledger.domain.errors import UnavailableError
from ledger.domain.time import format_time

KEY_PATTERN = re.compile(r"ql_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")


class KeyNameTakenError(ValueError):
    """A key of that name exists (revoked names stay taken: they remain events' `source`)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    name: str
    role: str
    departments: frozenset[str]
    key_id: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def new_key() -> tuple[str, str]:
    """A fresh key and its public id."""
    key_id = secrets.token_hex(6)
    return f"ql_{key_id}_{secrets.token_urlsafe(32)}", key_id


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key, or None."""
    match = KEY_PATTERN.fullmatch(key)
    return match.group(1) if match else None


class KeyStore:
    """The `api_keys` table, in the ledger's own database and through its connection pool."""

    def __init__(self, datastore: Any, kind: str) -> None:
        self._datastore = datastore
        self._postgres = kind == "postgresql"
        if self._postgres:
            schema = str(datastore.schema).replace('"', '""')
            self._table = f'"{schema}".api_keys'
        else:
            self._table = "api_keys"
        # SQLite: each thread looks keys up on a read-only connection of its own, outside the
        # library's pool and transactions (a fifth of the cost: every request looks its key up).
        pool: Any = None if self._postgres else getattr(datastore, "pool", None)
        file = pool is not None and not pool.is_sqlite_memory_mode
        self._sqlite_file: str | None = pool.db_name if file else None
        self._readers = threading.local()

    @classmethod
    def of(cls, recorder: object, kind: str) -> KeyStore:
        """The key store beside a ledger's recorder (`KeyStore.of(ledger.store, kind)`)."""
        datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        return cls(datastore, kind)

    def create(
        self, name: str, role: str, departments: frozenset[str], now: datetime
    ) -> tuple[str, ApiKey]:
        """Store a new key and return it: the only time the key itself is seen.

        `KeyRefusedError` for a key the ledger must never hold (`check_key`): a reserved name,
        departments on a role they do not bind; `KeyNameTakenError` for a name in use."""
        check_key(name, role, departments)
        key, key_id = new_key()
        row = (name, role, ",".join(sorted(departments)), key_id, hash_key(key), self._time(now))
        try:
            with self._transaction(commit=True) as c:
                c.execute(
                    self._sql(
                        "INSERT INTO {t} (name, role, departments, key_id, key_hash, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)"
                    ),
                    row,
                )
        except IntegrityError:
            raise KeyNameTakenError(f"a key named {name!r} exists") from None
        return key, ApiKey(name, role, departments, key_id, now, None)

    def authenticate(self, key: str) -> ApiKey | None:
        """The stored key that `key` is, if well-formed, known and not revoked."""
        key_id = key_id_of(key)
        if key_id is None:
            return None
        row = self._find(key_id)
        if row is None or not hmac.compare_digest(row["key_hash"], hash_key(key)):
            return None
        found = self._key(row)
        return None if found.revoked else found

    def list(self) -> list[ApiKey]:
        with self._transaction(commit=False) as c:
            c.execute(self._sql(f"{self._select} ORDER BY name"))
            return [self._key(r) for r in c.fetchall()]

    def revoke(self, name: str, now: datetime) -> bool:
        """Revoke a live key; False when no live key has that name."""
        with self._transaction(commit=True) as c:
            c.execute(
                self._sql(
                    "UPDATE {t} SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL "
                    "RETURNING name"
                ),
                (self._time(now), name),
            )
            return c.fetchone() is not None

    def is_empty(self) -> bool:
        with self._transaction(commit=False) as c:
            c.execute(self._sql("SELECT 1 FROM {t} LIMIT 1"))
            return c.fetchone() is None

    def _find(self, key_id: str) -> Any:
        """The row of `key_id`, as committed now (by any process), or None."""
        sql = self._sql(f"{self._select} WHERE key_id = ?")
        if self._sqlite_file is None:
            with self._transaction(commit=False) as c:
                c.execute(sql, (key_id,))
                return c.fetchone()
        try:
            reader: sqlite3.Connection | None = getattr(self._readers, "connection", None)
            if reader is None:
                reader = sqlite3.connect(self._sqlite_file, uri=True, isolation_level=None)
                reader.execute("PRAGMA query_only = ON")
                reader.row_factory = sqlite3.Row
                self._readers.connection = reader
            # Autocommit: each lookup reads the latest commit, a revocation's too.
            return reader.execute(sql, (key_id,)).fetchone()
        except sqlite3.Error as e:
            raise UnavailableError(str(e)) from e

    @property
    def _select(self) -> str:
        return "SELECT name, role, departments, key_id, key_hash, created_at, revoked_at FROM {t}"

    def _sql(self, sql: str) -> str:
        sql = sql.replace("{t}", self._table)
        return sql.replace("?", "%s") if self._postgres else sql

    def _time(self, value: datetime) -> Any:
        return value if self._postgres else format_time(value)

    @staticmethod
    def _key(row: Any) -> ApiKey:
        def when(value: Any) -> datetime | None:
            if value is None or isinstance(value, datetime):
                return value
            return datetime.fromisoformat(str(value))

        created = when(row["created_at"])
        assert created is not None
        departments = frozenset(d for d in str(row["departments"]).split(",") if d)
        return ApiKey(
            row["name"], row["role"], departments, row["key_id"], created, when(row["revoked_at"])
        )

    @contextmanager
    def _transaction(self, *, commit: bool) -> Iterator[Any]:
        try:
            with self._datastore.transaction(commit=commit) as c:
                yield c
        except (OperationalError, InterfaceError) as e:
            raise UnavailableError(str(e)) from e
