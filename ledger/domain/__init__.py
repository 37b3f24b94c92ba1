"""The domain: events, streams and their rules. It knows no HTTP and no SQL."""

from __future__ import annotations

from ledger.domain.batch import Batch
from ledger.domain.complaint import Complaint
from ledger.domain.plan import Plan
from ledger.domain.stream import LedgerStream

STREAM_CLASSES: dict[str, type[LedgerStream]] = {
    "batch": Batch,
    "complaint": Complaint,
    "plan": Plan,
}

__all__ = ["STREAM_CLASSES", "Batch", "Complaint", "LedgerStream", "Plan"]
