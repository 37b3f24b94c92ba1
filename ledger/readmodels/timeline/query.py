"""Reads of the dispute timeline: `GET /v1/complaints/{id}/timeline`, `/v1/batches/{id}/timeline`,
live or as of a recorded time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.readmodels.casefile import CaseFiles
from ledger.readmodels.timeline.evolve import timeline


class Timelines(CaseFiles):
    """Timelines computed from the counted events; every read is cut at `as_of` (recorded time)."""

    def complaint_timeline(self, complaint_id: str, as_of: datetime | None) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        facts = self.complaint_facts(complaint_id, cut)
        return timeline({"complaint_id": complaint_id}, facts, cut)

    def batch_timeline(self, batch_id: str, as_of: datetime | None) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        facts = self.batch_facts(batch_id, cut)
        if not facts:
            raise self.not_found("batch", batch_id)
        return timeline({"batch_id": batch_id}, facts, cut)
