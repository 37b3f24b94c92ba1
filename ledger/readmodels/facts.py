"""Events as the read models see them (corrections applied, the streams they link) and what
every read-model response carries. Pure: no ledger, no database."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from ledger.domain.time import format_time, parse_time

if TYPE_CHECKING:
    from ledger.storage.rows import StoredRow


@dataclass(frozen=True)
class Fact:
    """One stored event: its record plus where and when the ledger stored it."""

    record: dict[str, Any]
    position: int
    recorded_at: datetime

    @classmethod
    def from_row(cls, row: StoredRow) -> Fact:
        return cls(orjson.loads(row.state), row.position, row.recorded_at)

    @property
    def type(self) -> str:
        return str(self.record["type"])

    @property
    def event_id(self) -> str:
        return str(self.record["event_id"])

    @property
    def stream(self) -> tuple[str, str]:
        return self.record["stream"]["type"], self.record["stream"]["id"]

    @cached_property
    def occurred_at(self) -> datetime:
        return parse_time(self.record["occurred_at"])

    def view(self) -> dict[str, Any]:
        """The event as projections show it."""
        return {"position": self.position, "recorded_at": format_time(self.recorded_at)} | {
            k: v for k, v in self.record.items() if k != "prev_hash"
        }


def effective_data(facts: list[Fact]) -> dict[str, dict[str, Any]]:
    """Each event's data as corrected by the corrections among `facts` (in position order)."""
    data = {f.event_id: f.record["data"] for f in facts}
    for f in sorted(facts, key=lambda f: f.position):
        if f.type == "event.corrected":
            target = f.record["data"]["corrects_event_id"]
            if target in data:
                data[target] = f.record["data"]["data"]
    return data


def sealed(body: dict[str, Any]) -> dict[str, Any]:
    """The response with its fingerprint: SHA-256 of its canonical JSON without the fingerprint."""
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return {**body, "fingerprint": hashlib.sha256(canonical).hexdigest()}


def linked_batches(complaint: list[Fact]) -> list[str]:
    """The batches a complaint names, with corrections to `complaint.filed` applied."""
    data = effective_data(complaint)
    ids: list[str] = []
    for f in complaint:
        if f.type == "complaint.filed":
            ids += [b for b in data[f.event_id].get("batch_ids", []) if b not in ids]
    return ids


def material_lots(batch: list[Fact]) -> list[str]:
    """The material lots a production batch was made from, with corrections applied."""
    data = effective_data(batch)
    for f in batch:
        if f.type == "batch.registered":
            return list(data[f.event_id].get("material_lots", []))
    return []
