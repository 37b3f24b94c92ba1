"""A customer complaint: starts with `complaint.filed`; once closed, only reopening counts."""

from __future__ import annotations

from typing import Any

from ledger.domain.errors import StreamRuleError
from ledger.domain.stream import LedgerStream

AFTER_CLOSE = frozenset({"complaint.reopened", "event.corrected", "quality_cost.recorded"})


class Complaint(LedgerStream):
    stream_type = "complaint"
    opening_type = "complaint.filed"

    def evolve(self, record: dict[str, Any]) -> None:
        if record["type"] == "complaint.filed":
            self.closed = False
        elif record["type"] == "complaint.closed":
            self.closed = True
        elif record["type"] == "complaint.reopened":
            self.closed = False

    def check_next(self, record: dict[str, Any]) -> None:
        if self.closed and record["type"] not in AFTER_CLOSE:
            raise StreamRuleError(
                f"complaint {self.stream_id} is closed: only complaint.reopened, "
                "event.corrected and quality_cost.recorded are accepted"
            )
        if not self.closed and record["type"] == "complaint.reopened":
            raise StreamRuleError(f"complaint {self.stream_id} is open: nothing to reopen")
