"""Reads of the SLA items: the board (`GET /v1/sla`) from the stored read model, and the items of
a few streams computed from their events (what a responsibility chain counts), live or as of a
recorded time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from ledger.domain.time import format_time
from ledger.readmodels.casefile import CaseFiles, policy_facts
from ledger.readmodels.facts import sealed
from ledger.readmodels.paging import Cursor, CursorError, decode, query_digest
from ledger.readmodels.runner import ProjectionRunner
from ledger.readmodels.sla.evolve import PolicyHistory, settle, sla_items
from ledger.readmodels.trusted import trusted_sources
from ledger.readmodels.views import Views


def stream_items(
    cases: CaseFiles, streams: list[tuple[str, str]], cut: int, now: datetime
) -> list[dict[str, Any]]:
    """Items of a few streams, computed from their events (the function the board stores)."""
    policies = PolicyHistory(policy_facts(cases.ledger, cut))
    trusted = trusted_sources(cases.ledger)
    return [
        settle(item, now)
        for key in streams
        for item in sla_items(cases.facts(*key, cut), policies, trusted)
    ]


class SlaReads:
    """The SLA board from its stored read model, settled at `now` (or at an as-of read's time),
    in pages."""

    def __init__(self, board: ProjectionRunner, now: datetime) -> None:
        self.board = board
        self.ledger = board.ledger
        self.now = now

    def sla_board(
        self,
        state: str | None,
        department: str | None,
        as_of: datetime | None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """One page of at most `limit` items by due time (every item when None), from the
        cursor's key on; a walk's pages all read at the cut and time of its first page."""
        query = query_digest(
            state=state, department=department, as_of=format_time(as_of) if as_of else None
        )
        cut, now, after = self._start(query, as_of, cursor)
        self.board.wait_to_read(cut)
        rows = board_items(
            self.board.views, cut, now, department, state,
            after=after, limit=None if limit is None else limit + 1,
        )  # fmt: skip
        items = rows if limit is None else rows[:limit]
        next_cursor = None
        if len(rows) > len(items):
            last = (items[-1]["due_at"], items[-1]["notification_event_id"])
            next_cursor = Cursor(query, cut, format_time(now), last).encode()
        return sealed({"items": items, "position": cut, "next_cursor": next_cursor})

    def _start(
        self, query: str, as_of: datetime | None, cursor: str | None
    ) -> tuple[int, datetime, tuple[str, str] | None]:
        if cursor is None:
            return self.ledger.position_at(as_of), as_of or self.now, None
        page = decode(cursor, query, (str, str))
        if page.position > self.ledger.last_position():
            raise CursorError("the cursor names a position the ledger has not reached")
        try:
            now = datetime.fromisoformat(page.now)
        except ValueError as e:
            raise CursorError("not a cursor this ledger gave") from e
        if now.tzinfo is None:
            raise CursorError("not a cursor this ledger gave")
        due_at, event_id = page.after
        return page.position, now, (str(due_at), str(event_id))


# The state of SPEC §7.3 as a condition on the stored columns (times are comparable UTC text).
STATE_FILTERS = {
    "open": "fulfilled_at IS NULL AND due_at > ?",
    "breached": "fulfilled_at IS NULL AND due_at <= ?",
    "met": "fulfilled_at <= due_at",
    "met_late": "fulfilled_at > due_at",
}


def board_items(
    views: Views,
    cut: int,
    now: datetime,
    department: str | None = None,
    state: str | None = None,
    *,
    after: tuple[str, str] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The items counted at position `cut`, settled at `now`, by due time: those after the sort
    key `after` (due_at, notification_event_id), `limit` of them at most.

    One range scan of an index in (due_at, notification_event_id) order (the department's, when
    one is asked), which holds what decides whether a version counts at the cut and in the
    state asked for, stopped after `limit` rows (migration 0009).
    """
    where, params = "", list[Any]([cut, cut])
    if department is not None:
        where += " AND department = ?"
        params.append(department)
    if state is not None:
        where += " AND " + STATE_FILTERS[state]
        params += [format_time(now)] * STATE_FILTERS[state].count("?")
    if after is not None:
        where += " AND (due_at, notification_event_id) > (?, ?)"
        params += list(after)
    sql = (
        "SELECT item FROM {rm_sla_items} "
        f"WHERE valid_from <= ? AND (valid_to IS NULL OR valid_to > ?){where} "
        "ORDER BY due_at, notification_event_id"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    with views.transaction(commit=False) as cursor:
        cursor.execute(views.sql(sql), params)
        rows = cursor.fetchall()
    return [settle(orjson.loads(r["item"]), now) for r in rows]
