"""The SLA board's read model: every item of SPEC §7.3, versioned by position for as-of reads.

The rows are what `sla_items` (the pure function) gives for a stream's events up to each
position; the board's state at a time is added on read by `settle` (`sla.query`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ledger.application import Ledger
from ledger.readmodels.casefile import policy_facts
from ledger.readmodels.facts import Fact
from ledger.readmodels.sla.evolve import FULFILLED_BY, PolicyHistory, sla_items
from ledger.readmodels.views import Versions, Views

# (column, PostgreSQL type) of rm_sla_items, as `Versions.write` inserts them
ITEM_COLUMNS = [
    ("notification_event_id", "text"), ("valid_from", "bigint"), ("valid_to", "bigint"),
    ("stream_type", "text"), ("stream_id", "text"), ("department", "text"), ("due_at", "text"),
    ("fulfilled_at", "text"), ("item", "text"),
]  # fmt: skip
SLA_TYPES = frozenset(
    {"notification.sent", "escalation.raised", "event.corrected", *FULFILLED_BY.values()}
)


class SlaBoard:
    """Projector of `rm_sla_items`."""

    name = "sla_board"

    def __init__(self, ledger: Ledger, trusted: Callable[[], frozenset[str]]) -> None:
        self.ledger = ledger
        self.trusted = trusted
        self._policies: list[Fact] | None = None

    def forget(self) -> None:
        self._policies = None

    def reset(self, views: Views, cursor: Any) -> None:
        cursor.execute(views.sql("DELETE FROM {rm_sla_items}"))

    def _policy_facts(self, upto: int) -> list[Fact]:
        if self._policies is None:
            self._policies = policy_facts(self.ledger, upto)
        return self._policies

    def gather(self, facts: list[Fact]) -> Any:
        """The policies in force, the trusted sources and the touched streams' events."""
        policies = self._policy_facts(facts[0].position - 1)
        touched: dict[tuple[str, str], list[int]] = {}
        for f in facts:
            if f.type == "policy.set" or (f.type == "event.corrected" and f.stream[0] == "plan"):
                policies.append(f)
            elif f.type in SLA_TYPES:
                touched.setdefault(f.stream, []).append(f.position)
        if not touched:
            return None
        last = facts[-1].position
        streams = {
            key: [Fact.from_row(r) for r in rows if r.position <= last]
            for key, rows in self.ledger.streams_rows(list(touched)).items()
        }
        return touched, streams, PolicyHistory(policies), self.trusted()

    def apply(self, views: Views, cursor: Any, facts: list[Fact], gathered: Any) -> None:
        """Close the versions that changed and insert the new ones, a statement of each kind
        for the whole page."""
        if gathered is None:
            return
        touched, streams, history, trusted = gathered
        current = self._current(views, cursor, list(touched))
        versions = Versions()
        for (stream_type, stream_id), positions in touched.items():
            stream = streams[(stream_type, stream_id)]
            for position in positions:
                upto = [f for f in stream if f.position <= position]
                for item in sla_items(upto, history, trusted):
                    key = item["notification_event_id"]
                    if current.get(key) == item:
                        continue
                    if key in current:
                        versions.close(key, position)
                    versions.open(key, [
                        key, position, None, stream_type, stream_id, item["department"],
                        item["due_at"], item["fulfilled_at"], orjson.dumps(item).decode(),
                    ])  # fmt: skip
                    current[key] = item
        versions.write(views, cursor, views.table("rm_sla_items"), ITEM_COLUMNS)

    @staticmethod
    def _current(
        views: Views, cursor: Any, keys: list[tuple[str, str]]
    ) -> dict[str, dict[str, Any]]:
        """The current version of every item of these streams."""
        items: dict[str, dict[str, Any]] = {}
        for stream_type in sorted({t for t, _ in keys}):
            ids = sorted(i for t, i in keys if t == stream_type)
            for n in range(0, len(ids), 500):
                chunk = ids[n : n + 500]
                cursor.execute(
                    views.sql(
                        "SELECT item FROM {rm_sla_items} WHERE stream_type = ? AND stream_id IN "
                        f"({', '.join('?' * len(chunk))}) AND valid_to IS NULL"
                    ),
                    [stream_type, *chunk],
                )
                for r in cursor.fetchall():
                    item = orjson.loads(r["item"])
                    items[item["notification_event_id"]] = item
        return items
