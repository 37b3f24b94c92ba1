"""Reads of the dispute timeline: `GET /v1/complaints/{id}/timeline`, `/v1/batches/{id}/timeline`,
live or as of a recorded time, in pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.domain.time import format_time
from ledger.readmodels.casefile import CaseFiles
from ledger.readmodels.facts import Fact, linked_batches
from ledger.readmodels.paging import Cursor, CursorError, decode, query_digest
from ledger.readmodels.timeline.evolve import Key, timeline


class Timelines(CaseFiles):
    """Timelines computed from the counted events; every read is cut at `as_of` (recorded time),
    or at the position its cursor pins. `limit` None gives every event on one page."""

    def complaint_timeline(
        self,
        complaint_id: str,
        as_of: datetime | None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        query = query_digest(complaint=complaint_id, as_of=time_of(as_of))
        cut, after = self._start(query, as_of, cursor)
        own = self.facts("complaint", complaint_id, cut)
        if not own:
            raise self.not_found("complaint", complaint_id)
        seen = {f.event_id for f in own}
        linked: dict[str, Fact] = {}
        for b in linked_batches(own):
            for f in self.batch_facts(b, cut):
                if f.event_id not in seen:
                    linked.setdefault(f.event_id, f)
        return timeline(
            {"complaint_id": complaint_id}, own, list(linked.values()), cut,
            limit=limit, after=after, cursor_of=cursor_of(query, cut),
        )  # fmt: skip

    def batch_timeline(
        self,
        batch_id: str,
        as_of: datetime | None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        query = query_digest(batch=batch_id, as_of=time_of(as_of))
        cut, after = self._start(query, as_of, cursor)
        facts = self.batch_facts(batch_id, cut)
        if not facts:
            raise self.not_found("batch", batch_id)
        return timeline(
            {"batch_id": batch_id}, [], facts, cut,
            limit=limit, after=after, cursor_of=cursor_of(query, cut),
        )  # fmt: skip

    def _start(
        self, query: str, as_of: datetime | None, cursor: str | None
    ) -> tuple[int, Key | None]:
        return start(self.ledger, query, as_of, cursor)


def start(
    ledger: Ledger, query: str, as_of: datetime | None, cursor: str | None
) -> tuple[int, Key | None]:
    """The cut of a timeline's walk and where its page starts: a first page reads at `as_of`
    (now), a later one at the position its cursor pins."""
    if cursor is None:
        return ledger.position_at(as_of), None
    page = decode(cursor, query, (str, int))
    if page.position > ledger.last_position():
        raise CursorError("the cursor names a position the ledger has not reached")
    occurred_at, position = page.after
    return page.position, (str(occurred_at), int(position))


def time_of(as_of: datetime | None) -> str | None:
    return format_time(as_of) if as_of is not None else None


def cursor_of(query: str, cut: int) -> Any:
    return lambda after: Cursor(query, cut, "", after).encode()
