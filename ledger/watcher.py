"""The SLA watcher: appends one `escalation.raised` per missed deadline (SPEC §7.3)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from ledger.domain.access import LEDGER_SOURCE
from ledger.domain.errors import ConflictError
from ledger.readmodels.projections import Projections
from ledger.readmodels.sla.query import board_items

log = logging.getLogger("ledger.watcher")

ESCALATION_NAMESPACE = uuid5(NAMESPACE_URL, "https://quality-ledger.invalid/escalations")
WATCHER_ACTOR = {"id": "sla-watcher", "name": "SLA watcher", "department": "management"}


def escalation_for(item: dict[str, Any]) -> dict[str, Any]:
    """The escalation of a missed item. Its id and content depend on the item alone, so every
    server process that sees the miss appends the same event, and the ledger stores it once."""
    return {
        "event_id": str(uuid5(ESCALATION_NAMESPACE, item["notification_event_id"])),
        "type": "escalation.raised",
        "stream": item["stream"],
        "occurred_at": item["due_at"],
        "actor": WATCHER_ACTOR,
        "source": LEDGER_SOURCE,
        "data": {
            "notification_event_id": item["notification_event_id"],
            "department": item["department"],
            "escalated_to": item["escalate_to"],
            "due_at": item["due_at"],
        },
        "attributes": {},
    }


def tick(projections: Projections, now: datetime) -> int:
    """One pass: escalate every item whose due time passed unfulfilled; return how many.

    The pass reads the board once it counts every event appended before the pass began,
    waiting for its catch-up as a read does (ReadModelBehindError after the read wait): a
    pass never runs a catch-up itself, so another read model's long one cannot hold it up.
    """
    ledger = projections.ledger
    cut = ledger.last_position()
    projections.board.wait_to_read(cut)
    items = board_items(projections.views, cut, now)
    appended = 0
    for item in items:
        if item["state"] not in ("breached", "met_late") or item["escalated"]:
            continue
        try:
            appended += ledger.append_records([(escalation_for(item), None)], system=True).appended
        except ConflictError as e:
            # e.g. the complaint was closed before any watcher saw the miss
            log.info("not escalating %s: %s", item["notification_event_id"], e)
    return appended


class Watcher(threading.Thread):
    """Runs `tick` every `interval` seconds until stopped."""

    def __init__(self, projections: Projections, interval: float) -> None:
        super().__init__(name="sla-watcher", daemon=True)
        self.projections = projections
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                count = tick(self.projections, self.projections.ledger.clock())
                if count:
                    log.info("raised %d escalation(s)", count)
            except Exception:  # the watcher must outlive a database outage
                log.exception("SLA watcher pass failed; retrying next tick")

    def stop(self) -> None:
        self.stopped.set()
