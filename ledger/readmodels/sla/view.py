"""The SLA board's read model: every item of SPEC §7.3, versioned by position for as-of reads.

The rows are what `sla_items` (the pure function) gives for a stream's events up to each
position; the board's state at a time is added on read by `settle` (`sla.query`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ledger.application import Ledger
from ledger.domain.time import format_time
from ledger.readmodels.casefile import policy_facts
from ledger.readmodels.facts import Fact
from ledger.readmodels.sla.evolve import FULFILLED_BY, PolicyHistory, effective_time, sla_items
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


class Policies:
    """The policy history as counted at each position of a page: a policy set or corrected
    later in the page does not count for the events before it."""

    def __init__(self, facts: list[Fact]) -> None:
        self.facts = sorted(facts, key=lambda f: f.position)
        self._histories: dict[int, PolicyHistory] = {}

    def at(self, position: int) -> PolicyHistory:
        counted = sum(1 for f in self.facts if f.position <= position)
        if counted not in self._histories:
            self._histories[counted] = PolicyHistory(self.facts[:counted])
        return self._histories[counted]


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
        """The policies in force, the trusted sources, the page's events of each stream they
        touch, and the whole events of the few streams that must be recomputed: those where
        a correction changes a notification or an escalation."""
        policies = self._policy_facts(facts[0].position - 1)
        policy_ids = {f.event_id for f in policies if f.type == "policy.set"}
        touched: dict[tuple[str, str], list[Fact]] = {}
        again: set[tuple[str, str]] = set()
        for f in facts:
            if f.type == "policy.set" or (f.type == "event.corrected" and f.stream[0] == "plan"):
                policies.append(f)
                if f.type == "policy.set":
                    policy_ids.add(f.event_id)
                elif f.record["data"]["corrects_event_id"] in policy_ids:
                    # a corrected policy changes every item opened after it: all recomputed
                    for key in self.ledger.streams_with("notification.sent"):
                        touched.setdefault(key, []).append(f)
                        again.add(key)
            elif f.type in SLA_TYPES:
                touched.setdefault(f.stream, []).append(f)
        if not touched:
            return None
        last = facts[-1].position
        again |= self._recomputed(touched, facts)
        streams = {
            key: [Fact.from_row(r) for r in rows if r.position <= last]
            for key, rows in self.ledger.streams_rows(sorted(again)).items()
        }
        return touched, streams, Policies(policies), self.trusted()

    def _recomputed(
        self, touched: dict[tuple[str, str], list[Fact]], facts: list[Fact]
    ) -> set[tuple[str, str]]:
        """The streams where a correction of this page corrects a notification or an
        escalation of the same stream: their items are recomputed from all their events."""
        targets = {
            f.record["data"]["corrects_event_id"]: f.stream
            for fs in touched.values()
            for f in fs
            if f.type == "event.corrected"
        }
        if not targets:
            return set()
        kinds = {f.event_id: (f.type, f.stream) for f in facts}
        for row in self.ledger.store.lookup(sorted(set(targets) - set(kinds))):
            record = row.record()
            kinds[row.event_id] = (
                record["type"],
                (record["stream"]["type"], record["stream"]["id"]),
            )
        return {
            stream
            for target, stream in targets.items()
            if target in kinds and kinds[target] in (
                ("notification.sent", stream), ("escalation.raised", stream)
            )
        }  # fmt: skip

    def apply(self, views: Views, cursor: Any, facts: list[Fact], gathered: Any) -> None:
        """Close the versions that changed and insert the new ones, a statement of each kind
        for the whole page. A stream's items are folded forward from their current versions
        one event at a time, except in the streams recomputed from all their events."""
        if gathered is None:
            return
        touched, streams, policies, trusted = gathered
        current, opened = self._current(views, cursor, list(touched))
        versions = Versions()
        for (stream_type, stream_id), page in touched.items():
            stream = streams.get((stream_type, stream_id))
            for f in page:
                history = policies.at(f.position)
                if stream is not None:
                    upto = [g for g in stream if g.position <= f.position]
                    items = sla_items(upto, history, trusted)
                else:
                    items = folded(current, opened, f, history, trusted)
                for item in items:
                    key = item["notification_event_id"]
                    if current.get(key) == item:
                        continue
                    if key in current:
                        versions.close(key, f.position)
                    versions.open(key, [
                        key, f.position, None, stream_type, stream_id, item["department"],
                        item["due_at"], item["fulfilled_at"], orjson.dumps(item).decode(),
                    ])  # fmt: skip
                    current[key] = item
                    opened.setdefault(key, f.position)
        versions.write(views, cursor, views.table("rm_sla_items"), ITEM_COLUMNS)

    @staticmethod
    def _current(
        views: Views, cursor: Any, keys: list[tuple[str, str]]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
        """The current version of every item of these streams, and the position each item
        was opened at (its notification's)."""
        items: dict[str, dict[str, Any]] = {}
        opened: dict[str, int] = {}
        for stream_type in sorted({t for t, _ in keys}):
            ids = sorted(i for t, i in keys if t == stream_type)
            for n in range(0, len(ids), 500):
                chunk = ids[n : n + 500]
                cursor.execute(
                    views.sql(
                        "SELECT notification_event_id, MIN(valid_from) AS opened, "
                        "MAX(CASE WHEN valid_to IS NULL THEN item END) AS item "
                        "FROM {rm_sla_items} WHERE stream_type = ? AND stream_id IN "
                        f"({', '.join('?' * len(chunk))}) GROUP BY notification_event_id"
                    ),
                    [stream_type, *chunk],
                )
                for r in cursor.fetchall():
                    opened[r["notification_event_id"]] = int(r["opened"])
                    if r["item"] is not None:
                        items[r["notification_event_id"]] = orjson.loads(r["item"])
        return items, opened


def folded(
    current: dict[str, dict[str, Any]],
    opened: dict[str, int],
    fact: Fact,
    policies: PolicyHistory,
    trusted: frozenset[str],
) -> list[dict[str, Any]]:
    """The items of `fact`'s stream that `fact` opens or changes, from their current versions
    (`current`, notification positions in `opened`): what `sla_items` gives for the stream up to
    `fact` once the stream's corrections change no notification or escalation."""
    if fact.type == "notification.sent":
        return sla_items([fact], policies, trusted)
    mine = [i for k, i in current.items() if _stream(i) == fact.stream]
    if fact.type == "escalation.raised":
        target = fact.record["data"]["notification_event_id"]
        return [{**i, "escalated": True} for i in mine if i["notification_event_id"] == target]
    department = fact.record["actor"]["department"]
    changed = []
    for item in mine:
        wanted = FULFILLED_BY[item["action"]]
        if (
            item["fulfilled_by"] is None
            and wanted == fact.type
            and item["department"] == department
        ):
            policy = policies.at(opened[item["notification_event_id"]])
            fulfilled = effective_time(fact, policy, trusted)
            backdated = fact.recorded_at - fact.occurred_at > policy.tolerance
            changed.append({
                **item, "fulfilled_at": format_time(fulfilled), "fulfilled_by": fact.event_id,
                "backdated": backdated,
            })  # fmt: skip
    return changed


def _stream(item: dict[str, Any]) -> tuple[str, str]:
    return item["stream"]["type"], item["stream"]["id"]
