"""The KPI read model: every row of `kpi_rows`, versioned by position for as-of reads.

For each event the projector recomputes the rows of the streams it can change (its own; for a
complaint's filing, attribution or correction, also the batches the complaint names) with the
same pure function the straightforward recomputation uses, and stores what changed as a new
version valid from the event's position. A read selects the versions counted at its cut whose
time falls in the period; `kpis.Report` does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

from ledger.application import Ledger
from ledger.projections.facts import Fact
from ledger.projections.kpi_rows import LINKING_TYPES, Row, named_batches, stream_rows
from ledger.projections.kpis import Loader, Period
from ledger.projections.sla import PolicyHistory
from ledger.storage.views import Views

Unit = tuple[str, str]

COLUMNS = "kpi, department, person, entity, at, num, den, pending_until, label, refs, row_key"


class KpiBoard:
    """Projector of `rm_kpi_rows` (and `rm_kpi_links`, which complaints name which batch)."""

    name = "kpis"

    def __init__(self, ledger: Ledger, trusted: Callable[[], frozenset[str]], views: Views) -> None:
        self.ledger = ledger
        self.trusted = trusted
        self.views = views
        self._policies: list[Fact] | None = None

    def forget(self) -> None:
        self._policies = None

    def reset(self, views: Views, cursor: Any) -> None:
        cursor.execute(views.sql("DELETE FROM {rm_kpi_rows}"))
        cursor.execute(views.sql("DELETE FROM {rm_kpi_links}"))

    def _policy_facts(self, upto: int) -> list[Fact]:
        if self._policies is None:
            self._policies = [
                Fact.from_row(r)
                for key in self.ledger.streams_with("policy.set")
                for r in self.ledger.stream_rows(*key)
                if r.position <= upto
            ]
        return self._policies

    def gather(self, facts: list[Fact]) -> Any:
        """Everything a page needs from the ledger: the policies, the trusted sources, the
        events of the streams it touches and of the complaints that name a touched batch."""
        policies = self._policy_facts(facts[0].position - 1)
        last = facts[-1].position
        loaded: dict[Unit, list[Fact]] = {}

        def stream(unit: Unit) -> list[Fact]:
            if unit not in loaded:
                rows = self.ledger.stream_rows(*unit)
                loaded[unit] = [Fact.from_row(r) for r in rows if r.position <= last]
            return loaded[unit]

        touched: dict[Unit, set[int]] = {}
        links: set[tuple[str, str]] = set()
        policy_ids = {f.event_id for f in policies if f.type == "policy.set"}
        for f in facts:
            touched.setdefault(f.stream, set()).add(f.position)
            if f.stream[0] == "plan" and f.type in ("policy.set", "event.corrected"):
                policies.append(f)
                if f.type == "policy.set":
                    policy_ids.add(f.event_id)
                elif f.record["data"]["corrects_event_id"] in policy_ids:
                    # a corrected policy changes the deadlines of every item after it
                    for unit in self.ledger.streams_with(
                        "notification.sent", "rectification.completed"
                    ):
                        touched.setdefault(unit, set()).add(f.position)
            if f.stream[0] == "complaint" and f.type in LINKING_TYPES:
                for batch_id in named_batches(stream(f.stream)):
                    links.add((batch_id, f.stream[1]))
                    touched.setdefault(("batch", batch_id), set()).add(f.position)
        naming = self._links([u[1] for u in touched if u[0] == "batch"]) | links
        contexts: dict[Unit, list[Fact]] = {}
        for batch_id, complaint_id in sorted(naming):
            if ("batch", batch_id) in touched:
                contexts.setdefault(("batch", batch_id), []).extend(
                    stream(("complaint", complaint_id))
                )
        units = {unit: (stream(unit), contexts.get(unit, [])) for unit in touched}
        return touched, units, sorted(links), list(policies), self.trusted()

    def _links(self, batch_ids: list[str]) -> set[tuple[str, str]]:
        """(batch, complaint) pairs stored for these batches, read before the page's write."""
        found: set[tuple[str, str]] = set()
        views = self.views
        for i in range(0, len(batch_ids), 500):
            chunk = batch_ids[i : i + 500]
            with views.transaction(commit=False) as cursor:
                cursor.execute(
                    views.sql(
                        "SELECT batch_id, complaint_id FROM {rm_kpi_links} "
                        f"WHERE batch_id IN ({', '.join('?' * len(chunk))})"
                    ),
                    chunk,
                )
                found |= {(r["batch_id"], r["complaint_id"]) for r in cursor.fetchall()}
        return found

    def apply(self, views: Views, cursor: Any, facts: list[Fact], gathered: Any) -> None:
        touched, units, links, policies, trusted = gathered
        for batch_id, complaint_id in links:
            cursor.execute(
                views.sql(
                    "INSERT INTO {rm_kpi_links} (batch_id, complaint_id) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING"
                ),
                [batch_id, complaint_id],
            )
        for unit, positions in touched.items():
            facts_of, context = units[unit]
            self._update(views, cursor, unit, facts_of, context, positions, policies, trusted)

    def _update(
        self,
        views: Views,
        cursor: Any,
        unit: Unit,
        facts: list[Fact],
        context: list[Fact],
        positions: set[int],
        policies: list[Fact],
        trusted: frozenset[str],
    ) -> None:
        prefix = f"{unit[0]}/{unit[1]}"
        cursor.execute(
            views.sql(f"SELECT {COLUMNS} FROM {{rm_kpi_rows}} WHERE unit = ? AND valid_to IS NULL"),
            [prefix],
        )
        current = {r["row_key"]: to_row(r) for r in cursor.fetchall()}
        for position in sorted(positions):
            history = PolicyHistory([f for f in policies if f.position <= position])
            rows = stream_rows(
                [f for f in facts if f.position <= position],
                [f for f in context if f.position <= position],
                history,
                trusted,
            )
            new = {f"{prefix}|{r.key}": r for r in rows}
            for key, row in current.items():
                if new.get(key) != row:
                    cursor.execute(
                        views.sql(
                            "UPDATE {rm_kpi_rows} SET valid_to = ? "
                            "WHERE row_key = ? AND valid_to IS NULL"
                        ),
                        [position, key],
                    )
            for key, row in new.items():
                if current.get(key) != row:
                    cursor.execute(
                        views.sql(
                            "INSERT INTO {rm_kpi_rows} (row_key, valid_from, valid_to, unit, kpi, "
                            "department, person, entity, at, num, den, pending_until, label, refs)"
                            " VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        ),
                        [key, position, prefix, row.kpi, row.department, row.person, row.entity,
                         row.at, str(row.num), str(row.den), row.pending_until, row.label,
                         orjson.dumps([row.num_refs, row.den_refs]).decode()],
                    )  # fmt: skip
            current = new


def to_row(r: Any) -> Row:
    num_refs, den_refs = orjson.loads(r["refs"])
    key = r["row_key"].split("|", 1)[1]
    return Row(key, r["kpi"], r["department"], r["person"], r["entity"], r["at"],
               Decimal(r["num"]), Decimal(r["den"]), r["pending_until"], r["label"],
               tuple(num_refs), tuple(den_refs))  # fmt: skip


def stored_loader(views: Views, cut: int, tz: Any, person: str | None = None) -> Loader:
    """Select the rows counted at position `cut` in a period's window, as `rows_loader` does."""

    def load(period: Period, kpis: tuple[str, ...] | None) -> list[Row]:
        start, end = period.window(tz)
        sql = (
            f"SELECT {COLUMNS} FROM {{rm_kpi_rows}} WHERE at >= ? AND at < ? "
            "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
        )
        params: list[Any] = [start, end, cut, cut]
        if person is not None:
            sql += " AND person = ?"
            params.append(person)
        if kpis is not None:
            sql += f" AND kpi IN ({', '.join('?' * len(kpis))})"
            params += list(kpis)
        with views.transaction(commit=False) as cursor:
            cursor.execute(views.sql(sql), params)
            return [to_row(r) for r in cursor.fetchall()]

    return load
