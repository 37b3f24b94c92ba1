"""A plan stream: targets, policies and revenue; it needs no opening event."""

from __future__ import annotations

from ledger.domain.stream import LedgerStream


class Plan(LedgerStream):
    stream_type = "plan"
