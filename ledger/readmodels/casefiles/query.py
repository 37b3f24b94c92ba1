"""Reads of the timelines and responsibility chains from the case files' stored read model, live
or as of a recorded time: a complaint's own events come from its stream, what its batches and
their lots hold from the read model, so a read costs what it shows, not what the batches hold.

They answer exactly what `timeline.evolve.timeline` and `responsibility.evolve.responsibility`
compute from every counted event (`timeline.query.Timelines`, `responsibility.query`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from ledger.domain.errors import StreamNotFoundError
from ledger.readmodels.casefile import CaseFiles, policy_facts
from ledger.readmodels.casefiles.evolve import PROCESS_KINDS
from ledger.readmodels.casefiles.evolve import evidence as evidence_of
from ledger.readmodels.casefiles.view import selecting, summary_at
from ledger.readmodels.facts import Fact, effective_data, linked_batches
from ledger.readmodels.paging import query_digest
from ledger.readmodels.responsibility.evolve import (
    chain,
    inspection_cause,
    material_cause,
    process_cause,
    ranked,
)
from ledger.readmodels.runner import ProjectionRunner
from ledger.readmodels.sla.evolve import PolicyHistory, settle, sla_items
from ledger.readmodels.timeline.evolve import Key, corrections, key, page
from ledger.readmodels.timeline.query import cursor_of, start, time_of
from ledger.readmodels.trusted import trusted_sources

# (position, event_id, detail) of an event that reads as some kind of evidence
Reading = tuple[int, str, Any]


class CaseFileReads(CaseFiles):
    """The case files' stored rows at a cut; a read waits for the read model to count it."""

    def __init__(self, runner: ProjectionRunner) -> None:
        super().__init__(runner.ledger)
        self.runner = runner
        self.views = runner.views

    def _select(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
        with self.views.transaction(commit=False) as cursor:
            return selecting(self.views, cursor)(sql, params)

    def summary(self, stream_id: str, cut: int) -> dict[str, Any] | None:
        """A batch stream's summary at `cut`; None if it has no event counted there."""
        return summary_at(self._select, stream_id, cut)

    def paged_streams(self, batch_ids: list[str], cut: int) -> dict[str, dict[str, Any]]:
        """The summaries of these batches and of their material lots that have events at
        `cut`, each stream once, in the order their events come in `batch_facts`."""
        found: dict[str, dict[str, Any]] = {}
        for batch_id in batch_ids:
            batch = found.get(batch_id) or self.summary(batch_id, cut)
            if batch is None:
                continue
            found.setdefault(batch_id, batch)
            for lot in batch["material_lots"]:
                if lot not in found and (summary := self.summary(lot, cut)) is not None:
                    found[lot] = summary
        return found

    def events(
        self, stream_ids: list[str], cut: int, after: Key | None, limit: int | None
    ) -> list[Fact]:
        """The events of these streams counted at `cut`, in timeline order from after the key
        `after`, `limit` of them at most: one range scan of each stream's index."""
        where, params = "", list[Any]([cut])
        if after is not None:
            where = " AND (occurred_at, position) > (?, ?)"
            params += list(after)
        sql = (
            "SELECT occurred_at, position, event_id FROM {rm_case_events} "
            f"WHERE stream_id = ? AND position <= ?{where} ORDER BY occurred_at, position"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        keys: list[tuple[str, int, str]] = []
        for stream_id in stream_ids:
            keys += [
                (str(o), int(p), str(e)) for o, p, e in self._select(sql, [stream_id, *params])
            ]
        keys.sort()
        return self.facts_of([e for _, _, e in keys[:limit]])

    def facts_of(self, event_ids: list[str]) -> list[Fact]:
        """These events, in this order, read by event_id."""
        rows = self.ledger.events_by_id(event_ids)
        return [Fact(rows[e].record(), rows[e].position, rows[e].recorded_at) for e in event_ids]

    def corrected_by(self, event_ids: list[str], cut: int) -> dict[str, str]:
        """The first correction counted at `cut` of each of these events that has one."""
        found: dict[str, str] = {}
        for n in range(0, len(event_ids), 500):
            chunk = event_ids[n : n + 500]
            rows = self._select(
                "SELECT corrected_event_id, event_id FROM {rm_case_corrections} "
                f"WHERE corrected_event_id IN ({', '.join('?' * len(chunk))}) AND position <= ? "
                "ORDER BY position",
                [*chunk, cut],
            )
            for corrected, correction in rows:
                found.setdefault(str(corrected), str(correction))
        return found

    def evidence(self, stream_ids: list[str], cut: int) -> dict[tuple[str, str], list[Reading]]:
        """How the events of these streams read at `cut`, by (stream, kind), in position
        order: one range scan of each stream's evidence."""
        found: dict[tuple[str, str], list[Reading]] = {}
        for n in range(0, len(stream_ids), 500):
            chunk = stream_ids[n : n + 500]
            rows = self._select(
                "SELECT stream_id, kind, position, event_id, detail FROM {rm_case_evidence} "
                f"WHERE stream_id IN ({', '.join('?' * len(chunk))}) AND valid_from <= ? "
                "AND (valid_to IS NULL OR valid_to > ?) ORDER BY stream_id, kind, position",
                [*chunk, cut, cut],
            )
            for stream_id, kind, position, event_id, detail in rows:
                reading = (
                    int(position),
                    str(event_id),
                    orjson.loads(detail) if detail is not None else None,
                )
                found.setdefault((str(stream_id), str(kind)), []).append(reading)
        return found

    def batch_not_found(self, batch_id: str) -> StreamNotFoundError:
        """404 for a batch with no event at the cut, from its first summary's position."""
        rows = self._select(
            "SELECT position FROM {rm_case_summaries} WHERE stream_id = ? "
            "ORDER BY position LIMIT 1",
            [batch_id],
        )
        first = self.ledger.feed(int(rows[0][0]) - 1, 1) if rows else []
        if not first:
            return self.not_found("batch", batch_id)  # not counted yet: from the stream
        return self._recorded_later("batch", batch_id, first[0].recorded_at)


class TimelinePages(CaseFileReads):
    """Timelines in pages from the case files: `GET /v1/complaints/{id}/timeline` and
    `/v1/batches/{id}/timeline`, cut at `as_of` (recorded time) or the cursor's position."""

    def complaint_timeline(
        self, complaint_id: str, as_of: datetime | None, *, limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        query = query_digest(complaint=complaint_id, as_of=time_of(as_of))
        cut, after = start(self.ledger, query, as_of, cursor)
        own = self.facts("complaint", complaint_id, cut)
        if not own:
            raise self.not_found("complaint", complaint_id)
        self.runner.wait_to_read(cut)
        streams = self.paged_streams(linked_batches(own), cut)
        subject = {"complaint_id": complaint_id}
        return self._page(subject, own, streams, query, cut, after, limit)

    def batch_timeline(
        self, batch_id: str, as_of: datetime | None, *, limit: int | None = None,
        cursor: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        query = query_digest(batch=batch_id, as_of=time_of(as_of))
        cut, after = start(self.ledger, query, as_of, cursor)
        self.runner.wait_to_read(cut)
        streams = self.paged_streams([batch_id], cut)
        if not streams:
            raise self.batch_not_found(batch_id)
        return self._page({"batch_id": batch_id}, [], streams, query, cut, after, limit)

    def _page(
        self,
        subject: dict[str, str],
        pinned: list[Fact],
        streams: dict[str, dict[str, Any]],
        query: str,
        cut: int,
        after: Key | None,
        limit: int | None,
    ) -> dict[str, Any]:
        shown = self.events(list(streams), cut, after, None if limit is None else limit + 1)
        more = limit is not None and len(shown) > limit
        shown = shown[:limit]
        corrected_by = self.corrected_by([f.event_id for f in shown], cut)
        first = after is None
        if first:
            corrected_by |= corrections(pinned)
        return page(
            subject, (pinned if first else []) + shown, corrected_by,
            list(streams.values()) if first else None, cut,
            key(shown[-1]) if more else None, cursor_of(query, cut),
        )  # fmt: skip


class ResponsibilityChains(CaseFileReads):
    """Responsibility chains from the case files (`GET /v1/complaints/{id}/responsibility`), at
    `now` or at an as-of read's time."""

    def __init__(self, runner: ProjectionRunner, now: datetime) -> None:
        super().__init__(runner)
        self.now = now

    def complaint_responsibility(self, complaint_id: str, as_of: datetime | None) -> dict[str, Any]:
        cut = self.ledger.position_at(as_of)
        now = as_of or self.now
        own = self.facts("complaint", complaint_id, cut)
        if not own:
            raise self.not_found("complaint", complaint_id)
        self.runner.wait_to_read(cut)
        batches = linked_batches(own)
        streams = self.paged_streams(batches, cut)
        evidence = self.evidence(list(streams), cut)
        attributed = _attributions(own, list(streams), evidence)
        suggested = _suggestions(batches, streams, evidence)
        items = self._items(own, streams, evidence, cut, now)
        return chain(complaint_id, attributed, suggested, items, now, cut)

    def _items(
        self,
        own: list[Fact],
        streams: dict[str, dict[str, Any]],
        evidence: dict[tuple[str, str], list[Reading]],
        cut: int,
        now: datetime,
    ) -> list[dict[str, Any]]:
        """The SLA items of every stream with a notification counted, settled at `now`, from
        the events they depend on (`sla_items` reads no other)."""
        by_stream: list[list[Fact]] = []
        if any(f.type == "notification.sent" for f in own):
            by_stream.append(own)
        for stream_id, summary in streams.items():
            if summary["types"].get("notification.sent"):
                sla = evidence.get((stream_id, "sla"), [])
                by_stream.append(self.facts_of([e for _, e, _ in sla]))
        if not by_stream:
            return []
        policies = PolicyHistory(policy_facts(self.ledger, cut))
        trusted = trusted_sources(self.ledger)
        return [settle(i, now) for facts in by_stream for i in sla_items(facts, policies, trusted)]


def _attributions(
    own: list[Fact], stream_ids: list[str], evidence: dict[tuple[str, str], list[Reading]]
) -> list[dict[str, Any]]:
    """Every attribution counted in the complaint, its batches and their lots, by position."""
    data = effective_data(own)
    found: list[tuple[int, Any]] = []
    for f in own:
        if f.type == "cause.attributed":
            _, detail = evidence_of(f.type, f.event_id, data[f.event_id]) or (None, None)
            found.append((f.position, detail))
    for stream_id in stream_ids:
        found += [(p, d) for p, _, d in evidence.get((stream_id, "attribution"), [])]
    return [detail for _, detail in sorted(found, key=lambda a: a[0])]


def _suggestions(
    batch_ids: list[str],
    streams: dict[str, dict[str, Any]],
    evidence: dict[tuple[str, str], list[Reading]],
) -> list[dict[str, Any]]:
    """What `suggested_causes` reads of the events, from their stored evidence."""
    suggestions: list[dict[str, Any]] = []
    for batch_id in batch_ids:
        batch = streams.get(batch_id)
        if batch is None:
            continue
        for lot_id in batch["material_lots"]:
            failed = [e for _, e, _ in evidence.get((lot_id, "material"), [])]
            if failed:
                suggestions.append(material_cause(lot_id, failed))
        process = sorted(
            (p, e, kind) for kind in PROCESS_KINDS for p, e, _ in evidence.get((batch_id, kind), [])
        )
        suggestions += [process_cause(kind, e) for _, e, kind in process]
        passed = [e for _, e, _ in evidence.get((batch_id, "passed_final"), [])]
        if passed:
            suggestions.append(inspection_cause(batch_id, passed))
    return ranked(suggestions)
