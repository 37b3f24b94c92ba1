"""A material lot or a production batch: starts with `batch.registered`."""

from __future__ import annotations

from typing import Any

from ledger.domain.errors import StreamRuleError
from ledger.domain.stream import LedgerStream


class Batch(LedgerStream):
    stream_type = "batch"
    opening_type = "batch.registered"

    def evolve(self, record: dict[str, Any]) -> None:
        if record["type"] == "batch.registered":
            self.registration_id = record["event_id"]
            self.kind = record["data"]["kind"]
        elif (
            record["type"] == "event.corrected"
            and record["data"]["corrects_event_id"] == self.registration_id
        ):
            # A corrected event counts with its corrected data from the correction on.
            self.kind = record["data"]["data"]["kind"]

    def check_next(self, record: dict[str, Any]) -> None:
        if record["type"] == "shipment.recorded" and self.kind != "production":
            raise StreamRuleError(f"{self.stream_id} is a material lot: only production ships")
