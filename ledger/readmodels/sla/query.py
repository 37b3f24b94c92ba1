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
    """The SLA board from its stored read model, settled at `now` (or at an as-of read's time)."""

    def __init__(self, board: ProjectionRunner, now: datetime) -> None:
        self.board = board
        self.ledger = board.ledger
        self.now = now

    def sla_board(
        self, state: str | None, department: str | None, as_of: datetime | None
    ) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        self.board.wait_to_read(cut)
        now = as_of or self.now
        items = board_items(self.board.views, cut, now, department, state)
        return sealed({"items": items, "position": cut})


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
) -> list[dict[str, Any]]:
    """The items counted at position `cut`, settled at `now`, by due time."""
    where, params = "", []
    if department is not None:
        where += " AND department = ?"
        params.append(department)
    if state is not None:
        where += " AND " + STATE_FILTERS[state]
        params += [format_time(now)] * STATE_FILTERS[state].count("?")
    # Two ranges rather than `valid_to IS NULL OR valid_to > ?`, so each can use the index on
    # (valid_to, department, due_at): the current versions, and those superseded after the cut.
    sql = (
        "SELECT due_at, notification_event_id, item FROM {rm_sla_items} "
        f"WHERE valid_to IS NULL AND valid_from <= ?{where} "
        "UNION ALL SELECT due_at, notification_event_id, item FROM {rm_sla_items} "
        f"WHERE valid_to > ? AND valid_from <= ?{where} "
        "ORDER BY 1, 2"
    )
    with views.transaction(commit=False) as cursor:
        cursor.execute(views.sql(sql), [cut, *params, cut, cut, *params])
        rows = cursor.fetchall()
    return [settle(orjson.loads(r["item"]), now) for r in rows]
