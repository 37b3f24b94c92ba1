"""Events as the projections see them, and what every projection response carries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

import orjson

from ledger.application import Ledger
from ledger.domain.time import format_time, parse_time
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


def facts_of_streams_with(ledger: Ledger, types: tuple[str, ...], upto: int) -> list[Fact]:
    """The events, up to position `upto`, of every stream that holds an event of one of `types`
    (all of each stream's events, corrections included), read in one query."""
    rows = ledger.streams_rows(ledger.streams_with(*types))
    return [Fact.from_row(r) for found in rows.values() for r in found if r.position <= upto]


def policy_facts(ledger: Ledger, upto: int) -> list[Fact]:
    """The events of every plan stream that holds a `policy.set`: what `PolicyHistory` needs."""
    return facts_of_streams_with(ledger, ("policy.set",), upto)
