"""The stream class of each stream type: what the ledger opens a new stream as."""

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
