"""Where read models are stored: the ledger's own database, one dialect-neutral cursor."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import IntegrityError, Tracking
from psycopg.rows import tuple_row


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

    def select(self, cursor: Any, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        """Rows of `sql` as sequences (by position): cheaper to build than the dicts the
        library's PostgreSQL connections make, for reads of thousands of rows."""
        if self.kind == "sqlite":
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        factory = cursor.row_factory
        cursor.row_factory = tuple_row
        try:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        finally:
            cursor.row_factory = factory

    def insert_many(
        self,
        cursor: Any,
        table: str,
        columns: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        *,
        conflict: str = "",
    ) -> None:
        """Insert `rows` into `table`; `columns` are (name, PostgreSQL type) pairs; `conflict`
        an ON CONFLICT action such as "DO NOTHING".

        SQLite runs in process: `executemany`. PostgreSQL gets one statement whose columns are
        typed arrays (`unnest`): one execution on the server instead of one per row.
        """
        if not rows:
            return
        names = ", ".join(name for name, _ in columns)
        on = f" ON CONFLICT {conflict}" if conflict else ""
        if self.kind == "sqlite":
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}){on}", rows)
            return
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in columns)
        cursor.execute(
            f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){on}",
            [list(column) for column in zip(*rows, strict=True)],
        )

    def update_many(
        self,
        cursor: Any,
        table: str,
        column: tuple[str, str],
        keys: Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        where: str = "",
    ) -> None:
        """Set `column` to each row's first value where `keys` equal the row's other values
        (and `where` holds, written against the table's own columns). Each row must match a
        different set of table rows."""
        if not rows:
            return
        if self.kind == "sqlite":
            match = " AND ".join(f"{name} = ?" for name, _ in keys)
            extra = f" AND {where}" if where else ""
            cursor.executemany(f"UPDATE {table} SET {column[0]} = ? WHERE {match}{extra}", rows)
            return
        everything = [column, *keys]
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in everything)
        names = ", ".join(f"v_{name}" for name, _ in everything)
        match = " AND ".join(f"t.{name} = v.v_{name}" for name, _ in keys)
        extra = f" AND t.{where}" if where else ""
        cursor.execute(
            f"UPDATE {table} AS t SET {column[0]} = v.v_{column[0]} "
            f"FROM unnest({arrays}) AS v ({names}) WHERE {match}{extra}",
            [list(values) for values in zip(*rows, strict=True)],
        )

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


WRITES = ("INSERT", "UPDATE", "DELETE")  # what DeferredWrites keeps for the write transaction


class DeferredWrites:
    """The cursor a projector's `apply` gets outside the write transaction: its reads run at
    once, on a read transaction's cursor; its writes are kept and run in order later, on the
    write transaction's (`replay`). So the write lock (SQLite has one per database) is held
    for the writes alone, not for the reads and the computing between them. `apply` reads
    everything before it writes: a read after a write would not see it, and raises."""

    def __init__(self, reading: Any) -> None:
        self._reading = reading
        self._writes: list[tuple[str, str, Any]] = []  # (method, statement, parameters)

    @property
    def row_factory(self) -> Any:
        return self._reading.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._reading.row_factory = factory

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if sql.lstrip()[:6].upper() in WRITES:
            self._writes.append(("execute", sql, params))
        elif self._writes:
            raise RuntimeError(f"a read after the page's writes: {sql[:80]}")
        else:
            self._reading.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._writes.append(("executemany", sql, rows))

    def fetchone(self) -> Any:
        return self._reading.fetchone()

    def fetchall(self) -> Any:
        return self._reading.fetchall()

    def replay(self, cursor: Any) -> None:
        """Run the kept writes on the write transaction's `cursor`."""
        for method, sql, params in self._writes:
            getattr(cursor, method)(sql, params)


class Versions:
    """The versions of read-model rows that a page of events closes and opens, written in two
    statements at the page's end (`write`).

    Rows are lists that start (key, valid_from, valid_to, …), an open version's valid_to being
    None. A version opened and closed within the page is inserted with its valid_to; only the
    versions stored before the page are closed by an UPDATE.
    """

    def __init__(self) -> None:
        self.closes: list[list[Any]] = []  # [valid_to, key]
        self.inserts: list[list[Any]] = []
        self._open: dict[str, int] = {}  # key → index in `inserts` of its open version

    def close(self, key: str, position: int) -> None:
        """The version of `key` in force ends at `position`."""
        index = self._open.pop(key, None)
        if index is None:
            self.closes.append([position, key])
        else:
            self.inserts[index][2] = position

    def open(self, key: str, row: list[Any]) -> None:
        """`row` is the version of `key` from its valid_from on."""
        self._open[key] = len(self.inserts)
        self.inserts.append(row)

    def write(
        self, views: Views, cursor: Any, table: str, columns: Sequence[tuple[str, str]]
    ) -> None:
        """Close and insert in `table`, whose first three `columns` (name, PostgreSQL type) are
        the key, valid_from and valid_to."""
        views.update_many(
            cursor, table, columns[2], [columns[0]], self.closes, where="valid_to IS NULL"
        )
        views.insert_many(cursor, table, columns, self.inserts)


__all__ = ["DeferredWrites", "IntegrityError", "Versions", "Views"]
