"""The dispute timeline of a complaint or batch (SPEC §5, §7.1): a pure function of its events,
given in pages.

A page holds at most `limit` events of the paged streams (a complaint's batches and their lots, or
a batch and its lots), in occurred_at then position order, from the cursor's key on. The first
page also holds every event of the pinned stream (the complaint itself) and a summary of each
paged stream; the events of a page are in occurred_at then position order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.domain.time import format_time
from ledger.readmodels.facts import Fact, effective_data, sealed

Key = tuple[str, int]  # (occurred_at in UTC, position): the timeline's order


def key(fact: Fact) -> Key:
    return format_time(fact.occurred_at), fact.position


def corrections(facts: list[Fact]) -> dict[str, str]:
    """The first counted correction of each corrected event."""
    corrected_by: dict[str, str] = {}
    for f in sorted(facts, key=lambda f: f.position):
        if f.type == "event.corrected":
            corrected_by.setdefault(f.record["data"]["corrects_event_id"], f.event_id)
    return corrected_by


def summary(batch_id: str, facts: list[Fact]) -> dict[str, Any]:
    """A batch as the first page shows it: what it is, how many events of each type it holds,
    the span of their occurred_at and the last position counted."""
    data = effective_data(facts)
    registered = next((data[f.event_id] for f in facts if f.type == "batch.registered"), {})
    types: dict[str, int] = {}
    for f in facts:
        types[f.type] = types.get(f.type, 0) + 1
    times = [f.occurred_at for f in facts]
    return {
        "batch_id": batch_id,
        "kind": registered.get("kind"),
        "product": registered.get("product"),
        "material_lots": list(registered.get("material_lots", [])),
        "events": len(facts),
        "types": dict(sorted(types.items())),
        "first_occurred_at": format_time(min(times)) if times else None,
        "last_occurred_at": format_time(max(times)) if times else None,
        "last_position": max((f.position for f in facts), default=0),
    }


def timeline(
    subject: dict[str, str],
    pinned: list[Fact],
    paged: list[Fact],
    position: int,
    *,
    limit: int | None = None,
    after: Key | None = None,
    cursor_of: Callable[[Key], str] | None = None,
) -> dict[str, Any]:
    """One page of the subject's timeline; every event when `limit` is None.

    An event that a counted correction corrects carries `corrected_by`; the correction is shown
    beside it as an event of its own. `cursor_of` gives the next page's cursor from the key of
    this page's last paged event.
    """
    corrected_by = corrections(pinned + paged)
    rest = sorted((f for f in paged if after is None or key(f) > after), key=key)
    shown = rest if limit is None else rest[:limit]
    more = limit is not None and len(rest) > limit
    summaries = None
    if after is None:
        by_stream: dict[str, list[Fact]] = {}
        for f in paged:
            by_stream.setdefault(f.stream[1], []).append(f)
        summaries = [summary(b, fs) for b, fs in by_stream.items()]
    return page(
        subject, (pinned if after is None else []) + shown, corrected_by, summaries, position,
        key(shown[-1]) if more and cursor_of is not None else None, cursor_of,
    )  # fmt: skip


def page(
    subject: dict[str, str],
    events: list[Fact],
    corrected_by: dict[str, str],
    summaries: list[dict[str, Any]] | None,
    position: int,
    last: Key | None,
    cursor_of: Callable[[Key], str] | None,
) -> dict[str, Any]:
    """A page of `events` (in timeline order), the summaries a first page has, and the cursor
    of the page after the one whose last paged event has the key `last` (None: no more)."""
    shown = []
    for f in sorted(events, key=key):
        view = f.view()
        if f.event_id in corrected_by:
            view["corrected_by"] = corrected_by[f.event_id]
        shown.append(view)
    body: dict[str, Any] = {**subject, "events": shown}
    if summaries is not None:
        body["batches"] = summaries
    next_cursor = cursor_of(last) if last is not None and cursor_of is not None else None
    return sealed({**body, "position": position, "next_cursor": next_cursor})
