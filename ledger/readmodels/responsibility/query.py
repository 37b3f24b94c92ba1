"""Reads of the responsibility chain: `GET /v1/complaints/{id}/responsibility`, live or as of a
recorded time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.application import Ledger
from ledger.readmodels.casefile import CaseFiles
from ledger.readmodels.responsibility.evolve import responsibility
from ledger.readmodels.sla.query import stream_items


class Responsibilities(CaseFiles):
    """Responsibility chains computed from the counted events and their SLA items, at `now`
    (or at an as-of read's time)."""

    def __init__(self, ledger: Ledger, now: datetime) -> None:
        super().__init__(ledger)
        self.now = now

    def complaint_responsibility(self, complaint_id: str, as_of: datetime | None) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        now = as_of or self.now
        facts = self.complaint_facts(complaint_id, cut)
        streams = sorted({f.stream for f in facts if f.type == "notification.sent"})
        items = stream_items(self, streams, cut, now)
        return responsibility(complaint_id, facts, items, now, cut)
