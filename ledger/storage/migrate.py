"""Apply the SQL in migrations/<backend>/ with yoyo-migrations."""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

from ledger.storage.database import Database


def migrate(database: Database, *, until: str | None = None) -> list[str]:
    """Apply pending migrations (up to and including `until`, if given); return their ids."""
    if database.kind == "sqlite":
        Path(database.path).parent.mkdir(parents=True, exist_ok=True)
    backend = get_backend(database.yoyo_url())
    try:
        migrations = read_migrations(str(database.migrations))
        if until is not None:
            ids = [m.id for m in migrations]
            migrations = migrations[: ids.index(until) + 1]
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        backend.connection.close()
