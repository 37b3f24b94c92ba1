"""Where read models are stored: the ledger's own database, one dialect-neutral cursor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking


class Views:
    """Transactions on the ledger's database for read models, with the library's tracking."""

    def __init__(self, datastore: Any, kind: str, tracking: Any) -> None:
        self.datastore = datastore
        self.kind = kind
        self.tracking = tracking
        schema = getattr(datastore, "schema", "")
        self._prefix = f'"{schema}".' if kind == "postgresql" else ""

    def table(self, name: str) -> str:
        return self._prefix + name

    def sql(self, statement: str) -> str:
        """`?` placeholders as the driver wants them, `{t:name}` as qualified table names."""
        text = statement.replace("?", "%s") if self.kind == "postgresql" else statement
        for name in ("rm_sla_items", "rm_kpi_rows", "rm_kpi_links"):
            text = text.replace("{" + name + "}", self.table(name))
        return text

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def track(self, cursor: Any, name: str, position: int) -> None:
        """Record `position` for read model `name` in the view's transaction (exactly once:
        IntegrityError if another process already recorded it)."""
        self.tracking._insert_tracking(cursor, Tracking(name, position))

    def tracked(self, name: str) -> int:
        tracked: int | None = self.tracking.max_tracking_id(name)
        return tracked or 0

    def reset_tracking(self, cursor: Any, name: str) -> None:
        table = getattr(self.tracking, "tracking_table_name", "tracking")
        cursor.execute(
            self.sql(f"UPDATE {self._prefix}{table} SET notification_id = 0 "
                     "WHERE application_name = ?"),
            [name],
        )  # fmt: skip


__all__ = ["IntegrityError", "Views"]
