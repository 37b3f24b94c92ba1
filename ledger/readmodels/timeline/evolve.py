"""The dispute timeline of a complaint or batch (SPEC §5, §7.1): a pure function of its events."""

from __future__ import annotations

from typing import Any

from ledger.readmodels.facts import Fact, sealed


def timeline(subject: dict[str, str], facts: list[Fact], position: int) -> dict[str, Any]:
    """Every event of the subject's streams, ordered by occurred_at then position.

    An event that a counted correction corrects carries `corrected_by`; the correction is shown
    beside it as an event of its own.
    """
    corrected_by: dict[str, str] = {}
    for f in sorted(facts, key=lambda f: f.position):
        if f.type == "event.corrected":
            corrected_by.setdefault(f.record["data"]["corrects_event_id"], f.event_id)
    events = []
    for f in sorted(facts, key=lambda f: (f.occurred_at, f.position)):
        view = f.view()
        if f.event_id in corrected_by:
            view["corrected_by"] = corrected_by[f.event_id]
        events.append(view)
    return sealed({**subject, "events": events, "position": position})
