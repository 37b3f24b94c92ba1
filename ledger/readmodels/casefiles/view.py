"""The case files' stored read model (migration 0011): the events of every batch stream in
timeline order, their corrections, checkpoints of each stream's summary, and the evidence a
responsibility chain reads, versioned by position.

A page of the feed adds rows and closes evidence versions; nothing else is ever updated, so a
read at a cut keeps the rows with position (or valid_from) <= the cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ledger.application import Ledger
from ledger.domain.time import format_time
from ledger.readmodels.casefiles.evolve import (
    SLA_TYPES,
    Evidence,
    checkpoint,
    counted,
    empty_summary,
    evidence,
    summarized,
)
from ledger.readmodels.facts import Fact
from ledger.readmodels.views import Versions, Views

# (column, PostgreSQL type) of each table, as `Views.insert_many` inserts them
EVENT_COLUMNS = [
    ("stream_id", "text"), ("occurred_at", "text"), ("position", "bigint"), ("type", "text"),
    ("event_id", "text"),
]  # fmt: skip
CORRECTION_COLUMNS = [("corrected_event_id", "text"), ("position", "bigint"), ("event_id", "text")]
SUMMARY_COLUMNS = [("stream_id", "text"), ("position", "bigint"), ("summary", "text")]
EVIDENCE_COLUMNS = [
    ("event_id", "text"), ("valid_from", "bigint"), ("valid_to", "bigint"),
    ("stream_id", "text"), ("position", "bigint"), ("kind", "text"), ("detail", "text"),
]  # fmt: skip
TABLES = ("rm_case_events", "rm_case_corrections", "rm_case_summaries", "rm_case_evidence")
CHUNK = 500  # ids per IN (...) list
MAX_POSITION = 2**63 - 1
Select = Callable[[str, Sequence[Any]], list[Sequence[Any]]]  # (sql with {tables}, params)


def summary_at(select: Select, stream_id: str, cut: int) -> dict[str, Any] | None:
    """A batch stream's summary at position `cut`: its last checkpoint there, with the events
    counted after it (fewer than `CHECKPOINT`); None if it has no event counted at `cut`."""
    rows = select(
        "SELECT summary FROM {rm_case_summaries} WHERE stream_id = ? AND position <= ? "
        "ORDER BY position DESC LIMIT 1",
        [stream_id, cut],
    )
    if not rows:
        return None
    summary: dict[str, Any] = orjson.loads(rows[0][0])
    since = select(
        "SELECT position, type, occurred_at FROM {rm_case_events} "
        "WHERE stream_id = ? AND position > ? AND position <= ? ORDER BY position",
        [stream_id, summary["last_position"], cut],
    )
    for position, event_type, at in since:
        summary = counted(summary, int(position), str(event_type), str(at))
    return summary


def selecting(views: Views, cursor: Any) -> Select:
    """`Select` on `cursor`."""

    def select(sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        text = sql
        for name in TABLES:
            text = text.replace("{" + name + "}", views.table(name))
        return views.select(cursor, views.sql(text), params)

    return select


@dataclass
class _Page:
    """What a page's writes start from, read before its transaction opens."""

    summaries: dict[str, dict[str, Any]]  # each touched stream's summary before the page
    corrected: dict[str, Fact]  # the events corrected in the page, stored before it
    current: dict[str, Evidence]  # the evidence version in force of each of those


class CaseFileBoard:
    """Projector of the case files (`rm_case_*`)."""

    name = "casefiles"

    def __init__(self, ledger: Ledger, views: Views) -> None:
        self.ledger = ledger
        self.views = views

    def forget(self) -> None:
        """Nothing is kept between pages: each reads what it starts from."""

    def reset(self, views: Views, cursor: Any) -> None:
        for table in TABLES:
            cursor.execute(f"DELETE FROM {views.table(table)}")

    def gather(self, facts: list[Fact]) -> _Page | None:
        batch = [f for f in facts if f.stream[0] == "batch"]
        if not batch:
            return None
        in_page = {f.event_id for f in batch}
        targets = [
            t
            for f in batch
            if f.type == "event.corrected"
            and (t := str(f.record["data"]["corrects_event_id"])) not in in_page
        ]
        rows = self.ledger.events_by_id(sorted(set(targets)))
        corrected = {e: Fact(r.record(), r.position, r.recorded_at) for e, r in rows.items()}
        with self.views.transaction(commit=False) as cursor:
            summaries = self._summaries(cursor, sorted({f.stream[1] for f in batch}))
            current = self._current(cursor, sorted(corrected))
        return _Page(summaries, corrected, current)

    def apply(self, views: Views, cursor: Any, facts: list[Fact], page: _Page | None) -> None:
        """Add the page's rows, a statement per table for the whole page."""
        if page is None:
            return
        events, corrections, summaries = [], [], []
        versions = Versions()
        by_id = dict(page.corrected)
        for f in facts:
            if f.stream[0] != "batch":
                continue
            stream_id = f.stream[1]
            by_id[f.event_id] = f
            events.append([stream_id, format_time(f.occurred_at), f.position, f.type, f.event_id])
            corrected = None
            if f.type == "event.corrected":
                corrected = by_id.get(str(f.record["data"]["corrects_event_id"]))
                if corrected is not None:
                    corrections.append([corrected.event_id, f.position, f.event_id])
                    data = f.record["data"]["data"]
                    self._reads(versions, page.current, corrected, data, f.position)
                if corrected is not None and corrected.type in SLA_TYPES:
                    self._reads(versions, page.current, f, {}, f.position, kind="sla")
            else:
                self._reads(versions, page.current, f, f.record["data"], f.position)
            before = page.summaries.get(stream_id) or empty_summary(stream_id)
            page.summaries[stream_id] = after = summarized(before, f, corrected)
            if checkpoint(after, f, corrected):
                summaries.append([stream_id, f.position, orjson.dumps(after).decode()])
        views.insert_many(cursor, views.table("rm_case_events"), EVENT_COLUMNS, events)
        views.insert_many(
            cursor, views.table("rm_case_corrections"), CORRECTION_COLUMNS, corrections
        )
        views.insert_many(cursor, views.table("rm_case_summaries"), SUMMARY_COLUMNS, summaries)
        versions.write(views, cursor, views.table("rm_case_evidence"), EVIDENCE_COLUMNS)

    @staticmethod
    def _reads(
        versions: Versions,
        current: dict[str, Evidence],
        fact: Fact,
        data: dict[str, Any],
        position: int,
        *,
        kind: str | None = None,
    ) -> None:
        """`fact` reads as `data` says (or as evidence of `kind`) from `position` on: a new
        version if that changes it."""
        now = evidence(fact.type, fact.event_id, data) if kind is None else (kind, None)
        before = current.get(fact.event_id)
        if now == before:
            return
        if before is not None:
            versions.close(fact.event_id, position)
        if now is None:
            current.pop(fact.event_id, None)
            return
        kind, detail = now
        versions.open(fact.event_id, [
            fact.event_id, position, None, fact.stream[1], fact.position, kind,
            orjson.dumps(detail).decode() if detail is not None else None,
        ])  # fmt: skip
        current[fact.event_id] = now

    def _summaries(self, cursor: Any, stream_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The summary of each of these streams that has events, as the read model counts it."""
        select = selecting(self.views, cursor)
        found = {s: summary_at(select, s, MAX_POSITION) for s in stream_ids}
        return {s: summary for s, summary in found.items() if summary is not None}

    def _current(self, cursor: Any, event_ids: list[str]) -> dict[str, Evidence]:
        """The evidence version in force of each of these events that has one."""
        found: dict[str, Evidence] = {}
        for n in range(0, len(event_ids), CHUNK):
            chunk = event_ids[n : n + CHUNK]
            sql = self.views.sql(
                f"SELECT event_id, kind, detail FROM {self.views.table('rm_case_evidence')} "
                f"WHERE event_id IN ({', '.join('?' * len(chunk))}) AND valid_to IS NULL"
            )
            for event_id, kind, detail in self.views.select(cursor, sql, chunk):
                found[event_id] = (kind, orjson.loads(detail) if detail is not None else None)
        return found
