"""The KPI read model: every row of `evolve` and the sums of `sums`, versioned by position.

For each event the projector finds the streams whose rows it can change (its own; for a
complaint's filing, attribution or correction, also the batches the complaint names) and folds
each forward from the small state stored for it in `rm_kpi_state` (`fold`): most events add
their own rows, or change one (a rework, the batch's rework_rate), reading nothing of the
stream; an attribution flips the batch's defect_rate_adjusted rows, a new complaint's filing
turns the batch's earlier passed final inspections into misses, and a correction of an
inspection, process record, shipment, test or cost changes that event's rows, each read from
the stored rows. The few whose rows take the whole stream (`fold.NEEDS_STREAM`, a correction of
anything else, a batch a complaint's correction names, a stream without a state yet, or one
whose state an older version wrote) have it read and recomputed with the same pure
function the straightforward recomputation uses. What changed is stored as a new version valid
from the event's position, and what the changed rows' entities contribute to the time buckets'
sums (`sums.contribution`), less what they contributed before, as a new version of each
changed sum (a version counts for cuts in [valid_from, valid_to); an open one's valid_to is
OPEN). A rebuild replays the feed through the same steps.

A read selects the sum versions counted at its cut in the buckets that tile the period, and the
loose rows in each tile whose entity no chosen tile holds whole (`sums`); when no tiling
exists (a time zone whose offset is not a whole quarter hour) it selects every row of the period
instead. `report.Report` does the rest; `explain` still reads every row of the KPI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from ledger.application import Ledger
from ledger.readmodels.casefile import policy_facts
from ledger.readmodels.facts import Fact
from ledger.readmodels.kpis.evolve import LINKING_TYPES, Row, named_batches, stream_rows
from ledger.readmodels.kpis.fold import (
    GROUPED,
    Folded,
    GroupKey,
    Step,
    depth_in,
    derive,
    fold,
    foldable,
    group_key,
    group_sums,
    in_case,
)
from ledger.readmodels.kpis.report import Loader, Parts, Period, Sums
from ledger.readmodels.kpis.sums import (
    NEVER_LOOSE,
    Piece,
    Sum,
    SumKey,
    changes,
    contribution,
    parse,
    tiling,
)
from ledger.readmodels.sla.evolve import PolicyHistory
from ledger.readmodels.views import Versions, Views

Unit = tuple[str, str]
_Held = tuple[Row, int | None]  # a row in force and its depth if loose

COLUMNS = "kpi, department, person, entity, at, num, den, pending_until, label, refs, row_key"
# what figures need of a row (not its events: only `explain` shows them)
FIGURES = "kpi, department, person, entity, at, num, den, pending_until, label"
OPEN = 2**63 - 1  # valid_to of a sum version still in force
SUM_COLUMNS = "bucket, person, kpi, department, label, num, den, entities"
# (column, PostgreSQL type) of the bulk writes (Views.insert_many / update_many)
ROW_COLUMNS = [
    ("row_key", "text"), ("valid_from", "bigint"), ("valid_to", "bigint"), ("unit", "text"),
    ("kpi", "text"), ("department", "text"), ("person", "text"), ("entity", "text"),
    ("at", "text"), ("num", "text"), ("den", "text"), ("pending_until", "text"),
    ("label", "text"), ("refs", "text"), ("loose", "smallint"), ("depth", "smallint"),
]  # fmt: skip
SUM_KEY = [
    ("bucket", "text"), ("person", "text"), ("kpi", "text"), ("department", "text"),
    ("label", "text"), ("valid_from", "bigint"),
]  # fmt: skip
SUM_INSERT = [*SUM_KEY, ("valid_to", "bigint"), ("num", "text"), ("den", "text"),
              ("entities", "bigint")]  # fmt: skip
LINK_COLUMNS = [("batch_id", "text"), ("complaint_id", "text")]
STATE_COLUMNS = [("unit", "text"), ("state", "text"), ("position", "bigint")]
CASE_COLUMNS = [("unit", "text"), ("position", "bigint"), ("event_id", "text")]
SUM_KEY_NAMES = ("bucket", "person", "kpi", "department", "label")


class _Streams:
    """The streams a page reads, each once, cut at the page's last position."""

    def __init__(self, ledger: Ledger, last: int) -> None:
        self.ledger = ledger
        self.last = last
        self.loaded: dict[Unit, list[Fact]] = {}

    def preload(self, units: Iterable[Unit]) -> None:
        """Read the streams of `units` not read yet, all in one query."""
        missing = list(dict.fromkeys(u for u in units if u not in self.loaded))
        if missing:
            for unit, rows in self.ledger.streams_rows(missing).items():
                self.loaded[unit] = [Fact.from_row(r) for r in rows if r.position <= self.last]

    def __call__(self, unit: Unit) -> list[Fact]:
        self.preload([unit])
        return self.loaded[unit]


@dataclass
class _Page:
    """What `gather` read for a page: the streams it touches (with those positions), the
    folded state of each, the whole events of those it must recompute (with the complaints that
    name them), the links its complaints make, the policies and the trusted sources."""

    touched: dict[Unit, set[int]]
    states: dict[str, Folded]
    whole: dict[Unit, tuple[list[Fact], list[Fact]]]
    links: list[tuple[str, str]]
    policies: list[Fact]
    trusted: frozenset[str]
    targets: dict[str, Fact]  # the events the page's corrections correct, by event id
    cases: dict[Unit, list[Fact]]  # the stored case of each folded batch the page adds to


class KpiBoard:
    """Projector of `rm_kpi_rows` (and `rm_kpi_links`, which complaints name which batch).

    Each stream's rows are folded forward from a small state kept in `rm_kpi_state`
    (`fold.fold`): an event's work does not grow with its stream. The few events whose rows
    need their whole stream (registrations, corrections, attributions, filings, SLA items,
    rectifications) have it read and recomputed with `stream_rows`, as a rebuild's first event
    of each stream has.
    """

    name = "kpis"

    def __init__(self, ledger: Ledger, trusted: Callable[[], frozenset[str]], views: Views) -> None:
        self.ledger = ledger
        self.trusted = trusted
        self.views = views
        self._policies: list[Fact] | None = None

    def forget(self) -> None:
        self._policies = None

    def reset(self, views: Views, cursor: Any) -> None:
        cursor.execute(views.sql("DELETE FROM {rm_kpi_rows}"))
        cursor.execute(views.sql("DELETE FROM {rm_kpi_links}"))
        for table in ("rm_kpi_sums", "rm_kpi_sum_keys", "rm_kpi_state", "rm_kpi_case_events"):
            cursor.execute(views.sql(f"DELETE FROM {views.table(table)}"))

    def _policy_facts(self, upto: int) -> list[Fact]:
        if self._policies is None:
            self._policies = policy_facts(self.ledger, upto)
        return self._policies

    def gather(self, facts: list[Fact]) -> _Page:
        """Everything a page needs from the ledger: the policies, the trusted sources, the
        folded states of the streams it touches, and the whole events of those it recomputes
        and of the complaints that name a recomputed batch."""
        policies = self._policy_facts(facts[0].position - 1)
        stream = _Streams(self.ledger, facts[-1].position)
        touched, links = self._touched(facts, policies, stream)
        states = self._states([_prefix(u) for u in touched])
        by_position = {f.position: f for f in facts}
        targets = self._targets(facts)
        whole = [
            unit
            for unit, positions in touched.items()
            if any(
                not foldable(states.get(_prefix(unit)), by_position.get(p), unit, targets)
                for p in positions
            )
        ]
        naming = self._links([u[1] for u in whole if u[0] == "batch"]) | links
        wanted = set(whole)
        stream.preload([*whole, *(("complaint", c) for b, c in naming if ("batch", b) in wanted)])
        contexts: dict[Unit, list[Fact]] = {}
        for batch_id, complaint_id in sorted(naming):
            if ("batch", batch_id) in wanted:
                contexts.setdefault(("batch", batch_id), []).extend(
                    stream(("complaint", complaint_id))
                )
        loaded = {unit: (stream(unit), contexts.get(unit, [])) for unit in whole}
        cases = self._cases([
            unit for unit, positions in touched.items()
            if unit not in wanted and any(_of_case(by_position.get(p), unit, targets)
                                          for p in positions)
        ])  # fmt: skip
        return _Page(
            touched, states, loaded, sorted(links), list(policies), self.trusted(), targets,
            cases,
        )  # fmt: skip

    def _cases(self, units: list[Unit]) -> dict[Unit, list[Fact]]:
        """The case of each of these batches as stored before the page (`rm_kpi_case_events`),
        read by event id."""
        found: dict[Unit, list[str]] = {unit: [] for unit in units}
        by_prefix = {_prefix(u): u for u in units}
        for i in range(0, len(units), 500):
            chunk = list(by_prefix)[i : i + 500]
            with self.views.transaction(commit=False) as cursor:
                cursor.execute(
                    self.views.sql(
                        f"SELECT unit, event_id FROM {self.views.table('rm_kpi_case_events')} "
                        f"WHERE unit IN ({', '.join('?' * len(chunk))}) ORDER BY unit, position"
                    ),
                    chunk,
                )
                for r in cursor.fetchall():
                    found[by_prefix[r["unit"]]].append(r["event_id"])
        rows = self.ledger.events_by_id([e for ids in found.values() for e in ids])
        return {
            unit: [Fact(rows[e].record(), rows[e].position, rows[e].recorded_at) for e in ids]
            for unit, ids in found.items()
        }

    def _targets(self, facts: list[Fact]) -> dict[str, Fact]:
        """The events that the page's corrections in batches correct, by event id: of the page,
        or looked up in the ledger."""
        wanted = {
            f.record["data"]["corrects_event_id"]
            for f in facts
            if f.type == "event.corrected" and f.stream[0] == "batch"
        }
        if not wanted:
            return {}
        found = {f.event_id: f for f in facts if f.event_id in wanted}
        for row in self.ledger.store.lookup(sorted(wanted - set(found))):
            found[row.event_id] = Fact(row.record(), row.position, row.recorded_at)
        return found

    def _touched(
        self, facts: list[Fact], policies: list[Fact], stream: _Streams
    ) -> tuple[dict[Unit, set[int]], set[tuple[str, str]]]:
        """The streams whose rows the page's events can change, with those positions, and the
        (batch, complaint) links its complaints make; the page's policy events join `policies`."""
        touched: dict[Unit, set[int]] = {}
        links: set[tuple[str, str]] = set()
        policy_ids = {f.event_id for f in policies if f.type == "policy.set"}
        stream.preload(
            f.stream for f in facts if f.stream[0] == "complaint" and f.type in LINKING_TYPES
        )
        for f in facts:
            touched.setdefault(f.stream, set()).add(f.position)
            if f.stream[0] == "plan" and f.type in ("policy.set", "event.corrected"):
                policies.append(f)
                if f.type == "policy.set":
                    policy_ids.add(f.event_id)
                elif f.record["data"]["corrects_event_id"] in policy_ids:
                    # a corrected policy changes the deadlines of every item after it
                    for unit in self.ledger.streams_with(
                        "notification.sent", "rectification.completed"
                    ):
                        touched.setdefault(unit, set()).add(f.position)
            if f.stream[0] == "complaint" and f.type in LINKING_TYPES:
                for batch_id in named_batches(stream(f.stream)):
                    links.add((batch_id, f.stream[1]))
                    touched.setdefault(("batch", batch_id), set()).add(f.position)
        return touched, links

    def _links(self, batch_ids: list[str]) -> set[tuple[str, str]]:
        """(batch, complaint) pairs stored for these batches, read before the page's write."""
        found: set[tuple[str, str]] = set()
        views = self.views
        for i in range(0, len(batch_ids), 500):
            chunk = batch_ids[i : i + 500]
            with views.transaction(commit=False) as cursor:
                cursor.execute(
                    views.sql(
                        "SELECT batch_id, complaint_id FROM {rm_kpi_links} "
                        f"WHERE batch_id IN ({', '.join('?' * len(chunk))})"
                    ),
                    chunk,
                )
                found |= {(r["batch_id"], r["complaint_id"]) for r in cursor.fetchall()}
        return found

    def _states(self, prefixes: list[str]) -> dict[str, Folded]:
        """The folded state of each of these streams that has one."""
        found: dict[str, Folded] = {}
        views = self.views
        table = views.table("rm_kpi_state")
        for i in range(0, len(prefixes), 500):
            chunk = prefixes[i : i + 500]
            with views.transaction(commit=False) as cursor:
                cursor.execute(
                    views.sql(
                        f"SELECT unit, state FROM {table} "
                        f"WHERE unit IN ({', '.join('?' * len(chunk))})"
                    ),
                    chunk,
                )
                for r in cursor.fetchall():
                    state = Folded.from_json(r["state"])
                    if state is not None:
                        found[r["unit"]] = state
        return found

    def apply(self, views: Views, cursor: Any, facts: list[Fact], gathered: Any) -> None:
        page: _Page = gathered
        current = self._current(views, cursor, [_prefix(u) for u in page.whole])
        by_position = {f.position: f for f in facts}
        deltas: dict[int, dict[SumKey, list[Any]]] = {}
        versions = Versions()
        saved: list[list[Any]] = []
        cased: list[list[Any]] = []
        for unit, positions in page.touched.items():
            prefix = _prefix(unit)
            rows = _Rows(views, cursor, prefix, current.get(prefix) if unit in page.whole else None)
            state = page.states.get(prefix)
            case = page.cases.get(unit)
            for position in sorted(positions):
                fact = by_position.get(position)
                history = None  # the policies counted here, for an event of the batch's case
                if case is not None and _of_case(fact, unit, page.targets):
                    assert fact is not None
                    case = [*case, fact]
                    history = PolicyHistory([f for f in page.policies if f.position <= position])
                step = None
                if state is not None and fact is not None:
                    step = fold(state, fact, unit, rows.row, rows.of_kpi, page.targets,
                                case=case, policies=history, trusted=page.trusted)  # fmt: skip
                if state is not None and step is not None:
                    (_retaken if step.retaken else _folded)(
                        state, step, position, rows, deltas, versions
                    )
                    state = step.state
                else:
                    state = self._recompute(page, unit, position, rows, deltas, versions)
            assert state is not None
            saved.append([prefix, state.to_json(), max(positions)])
            cased += _case_rows(page, unit, positions, case)
        # Every read above or at the start of `_add`, every write after: the writes are kept
        # for the write transaction (views.DeferredWrites).
        self._add(views, cursor, deltas)
        views.insert_many(
            cursor, views.table("rm_kpi_links"), LINK_COLUMNS, page.links, conflict="DO NOTHING"
        )
        versions.write(views, cursor, views.table("rm_kpi_rows"), ROW_COLUMNS)
        views.insert_many(
            cursor, views.table("rm_kpi_case_events"), CASE_COLUMNS, cased, conflict="DO NOTHING"
        )
        views.insert_many(
            cursor, views.table("rm_kpi_state"), STATE_COLUMNS, saved,
            conflict="(unit) DO UPDATE SET state = excluded.state, position = excluded.position",
        )  # fmt: skip

    @staticmethod
    def _current(
        views: Views, cursor: Any, prefixes: list[str]
    ) -> dict[str, dict[str, tuple[Row, int | None]]]:
        """The rows in force of each unit, by row key: the row and its depth if loose."""
        current: dict[str, dict[str, tuple[Row, int | None]]] = {p: {} for p in prefixes}
        for i in range(0, len(prefixes), 500):
            chunk = prefixes[i : i + 500]
            cursor.execute(
                views.sql(
                    f"SELECT {COLUMNS}, loose, depth, unit FROM {{rm_kpi_rows}} "
                    f"WHERE unit IN ({', '.join('?' * len(chunk))}) AND valid_to IS NULL"
                ),
                chunk,
            )
            for r in cursor.fetchall():
                current[r["unit"]][r["row_key"]] = _held(r)
        return current

    def _recompute(
        self,
        page: _Page,
        unit: Unit,
        position: int,
        rows: _Rows,
        deltas: dict[int, dict[SumKey, list[Any]]],
        versions: Versions,
    ) -> Folded:
        """Recompute one unit's rows at `position` from its whole stream; note the versions
        that change and the sums' deltas; return its state there."""
        facts, context = page.whole[unit]
        held = rows.everything()
        sums, _ = contribution([row for row, _ in held.values()])
        counted = [f for f in facts if f.position <= position]
        linked = [f for f in context if f.position <= position]
        history = PolicyHistory([f for f in page.policies if f.position <= position])
        found = stream_rows(counted, linked, history, page.trusted)
        new_sums, loose = contribution(found)
        if new_sums != sums:
            changes(deltas.setdefault(position, {}), sums, new_sums)
        new = {f"{rows.prefix}|{r.key}": (r, loose.get(r.key)) for r in found}
        for key, was in held.items():
            if new.get(key) != was:
                versions.close(key, position)
        for key, (row, depth) in new.items():
            if held.get(key) != (row, depth):
                versions.open(key, _version(key, position, rows.prefix, row, depth))
        rows.replace(new)
        return derive(counted, linked, found)

    def _add(self, views: Views, cursor: Any, deltas: dict[int, dict[SumKey, list[Any]]]) -> None:
        """Store the page's changes of the sums, one version per position that changed one."""
        changes: dict[SumKey, list[tuple[int, list[Any]]]] = {}
        for position in sorted(deltas):
            for key, delta in deltas[position].items():
                if any(delta):
                    changes.setdefault(key, []).append((position, delta))
        if not changes:
            return
        table = views.table("rm_kpi_sums")
        totals = _open_sums(views, cursor, table, changes)
        closes: list[list[Any]] = []
        inserts: list[list[Any]] = []
        new_keys: list[SumKey] = []
        for key, steps in changes.items():
            opened = totals.get(key)
            if opened is not None:
                closes.append([steps[0][0], *key, opened[1]])
            else:
                new_keys.append(key)  # or one whose sum was empty for a while: kept once
            num, den, n = opened[0] if opened is not None else (0, 0, 0)
            for i, (position, (dnum, dden, dn)) in enumerate(steps):
                num, den, n = num + dnum, den + dden, n + dn
                if n:
                    until = steps[i + 1][0] if i + 1 < len(steps) else OPEN
                    inserts.append([*key, position, until, str(num), str(den), n])
        # The version closed is the open one: saying so lets PostgreSQL find it with one seek of
        # rm_kpi_sums_open (bucket, person, valid_to), not a scan of every version of the pair.
        views.update_many(
            cursor, table, ("valid_to", "bigint"), SUM_KEY, closes, where=f"valid_to = {OPEN}"
        )
        views.insert_many(cursor, table, SUM_INSERT, inserts)
        views.insert_many(
            cursor, views.table("rm_kpi_sum_keys"), SUM_KEY[:5], new_keys, conflict="DO NOTHING"
        )


class _Rows:
    """One unit's rows in force as the page goes, by row key (the row and its depth if loose):
    all of them for a unit recomputed from its stream, else those the page looked up (on the
    page's cursor) or wrote."""

    def __init__(
        self, views: Views, cursor: Any, prefix: str, held: dict[str, _Held] | None
    ) -> None:
        self.views = views
        self.cursor = cursor
        self.prefix = prefix
        self.whole = held is not None
        self.held: dict[str, _Held | None] = dict(held or {})

    def row(self, key: str) -> Row | None:
        """The row of `key` (within the stream) in force, looked up if not seen yet."""
        full = f"{self.prefix}|{key}"
        if full not in self.held and not self.whole:
            self.cursor.execute(
                self.views.sql(
                    f"SELECT {COLUMNS}, loose, depth FROM {{rm_kpi_rows}} "
                    "WHERE row_key = ? AND valid_to IS NULL"
                ),
                [full],
            )
            found = self.cursor.fetchone()
            self.held[full] = _held(found) if found is not None else None
        held = self.held.get(full)
        return held[0] if held is not None else None

    def seen(self, key: str) -> _Held | None:
        """The row of `key` as the page knows it: `fold` looks up every row it changes, so a
        row not seen is a new one."""
        return self.held.get(key)

    def group(self, key: GroupKey) -> dict[str, _Held]:
        """The rows in force of one entity."""
        if not self.whole:
            self.cursor.execute(
                self.views.sql(
                    f"SELECT {COLUMNS}, loose, depth FROM {{rm_kpi_rows}} WHERE unit = ? "
                    "AND valid_to IS NULL AND kpi = ? AND department = ? AND entity = ?"
                ),
                [self.prefix, *key],
            )
            for r in self.cursor.fetchall():
                self.held.setdefault(r["row_key"], _held(r))
        return {k: v for k, v in self.held.items() if v is not None and group_key(v[0]) == key}

    def everything(self) -> dict[str, _Held]:
        if not self.whole:
            raise LookupError(f"{self.prefix} was not read whole")
        return {k: v for k, v in self.held.items() if v is not None}

    def of_kpi(self, kpi: str) -> list[Row]:
        """The rows in force of one KPI."""
        if not self.whole:
            self.cursor.execute(
                self.views.sql(
                    f"SELECT {COLUMNS}, loose, depth FROM {{rm_kpi_rows}} WHERE unit = ? "
                    "AND valid_to IS NULL AND kpi = ?"
                ),
                [self.prefix, kpi],
            )
            for r in self.cursor.fetchall():
                self.held.setdefault(r["row_key"], _held(r))
        return [v[0] for v in self.held.values() if v is not None and v[0].kpi == kpi]

    def remove(self, versions: Versions, key: str, position: int) -> None:
        """The version of `key` in force ends at `position`."""
        versions.close(key, position)
        self.held[key] = None

    def replace(self, new: dict[str, _Held]) -> None:
        self.held = dict(new)

    def write(
        self, versions: Versions, key: str, position: int, row: Row, depth: int | None
    ) -> None:
        """`row` (with `depth`) is the version of `key` from `position` on."""
        if self.held.get(key) is not None:
            versions.close(key, position)
        versions.open(key, _version(key, position, self.prefix, row, depth))
        self.held[key] = (row, depth)


def _folded(
    before: Folded,
    step: Step,
    position: int,
    rows: _Rows,
    deltas: dict[int, dict[SumKey, list[Any]]],
    versions: Versions,
) -> None:
    """Note the versions and the sums' deltas of the rows one event added, changed or
    removed. An entity of GROUPED adds to the sums what its folded group does, so its change
    is noted once however many of its rows the event changes."""
    after = step.state
    delta = deltas.setdefault(position, {})
    keys = {f"{rows.prefix}|{k}" for k in (*(r.key for r in step.rows), *step.removed)}
    entities: set[GroupKey] = set()
    for key in step.removed:
        full = f"{rows.prefix}|{key}"
        was = rows.seen(full)  # `fold` looked up every row it removes
        if was is None:
            continue
        if was[0].kpi in GROUPED:
            entities.add(group_key(was[0]))
        else:
            changes(delta, contribution([was[0]])[0], {})
        rows.remove(versions, full, position)
    for row in step.rows:
        key = f"{rows.prefix}|{row.key}"
        was = rows.seen(key)
        if row.kpi in GROUPED:
            entities.add(group_key(row))
            new = after.group(group_key(row))
            assert new is not None
            depth = depth_in(new, row)
        else:
            new_sums, loose = contribution([row])
            changes(delta, contribution([was[0]])[0] if was is not None else {}, new_sums)
            depth = loose.get(row.key)
        if was != (row, depth):
            rows.write(versions, key, position, row, depth)
    for entity in sorted(entities):
        _entity_changed(entity, before, after, keys, position, rows, delta, versions)


def _entity_changed(
    entity: GroupKey,
    before: Folded,
    after: Folded,
    keys: set[str],
    position: int,
    rows: _Rows,
    delta: dict[SumKey, list[Any]],
    versions: Versions,
) -> None:
    """Note what an entity of GROUPED whose rows an event changed adds to the sums now, and
    the new depths of its other rows where its buckets changed."""
    old, new = before.group(entity), after.group(entity)
    changes(delta, group_sums(entity, old), group_sums(entity, new))
    if old is None or new is None:
        return
    if old.levels != new.levels or 1 in (old.count, new.count):
        for other_key, (other, other_depth) in rows.group(entity).items():
            if other_key not in keys and depth_in(new, other) != other_depth:
                rows.write(versions, other_key, position, other, depth_in(new, other))


def _retaken(
    before: Folded,
    step: Step,
    position: int,
    rows: _Rows,
    deltas: dict[int, dict[SumKey, list[Any]]],
    versions: Versions,
) -> None:
    """Note the versions and the sums' deltas of a step whose rows replace every row of its
    KPIs (`step.retaken`): all of an entity's rows are among them, before and after."""
    held = {
        f"{rows.prefix}|{r.key}": rows.seen(f"{rows.prefix}|{r.key}")
        for kpi in step.retaken
        for r in rows.of_kpi(kpi)
    }
    sums, _ = contribution([h[0] for h in held.values() if h is not None])
    new_sums, loose = contribution(step.rows)
    changes(deltas.setdefault(position, {}), sums, new_sums)
    new = {f"{rows.prefix}|{r.key}": (r, loose.get(r.key)) for r in step.rows}
    for key in held:
        if key not in new:
            rows.remove(versions, key, position)
    for key, (row, depth) in new.items():
        if held.get(key) != (row, depth):
            rows.write(versions, key, position, row, depth)


def _of_case(fact: Fact | None, unit: Unit, targets: dict[str, Fact]) -> bool:
    """Whether `fact` is an event of batch `unit`'s case (`fold.CASE_TYPES`)."""
    return (
        fact is not None and unit[0] == "batch" and fact.stream == unit and in_case(fact, targets)
    )


def _case_rows(
    page: _Page, unit: Unit, positions: set[int], case: list[Fact] | None
) -> list[list[Any]]:
    """The rows of `rm_kpi_case_events` for what the page counted of batch `unit`: its case
    as folded, or, for a batch read whole, every event of its case up to the page's last
    position of it."""
    if unit[0] != "batch":
        return []
    if unit in page.whole:
        facts = [f for f in page.whole[unit][0] if f.position <= max(positions)]
        own = {f.event_id: f for f in facts}
        case = [f for f in facts if _of_case(f, unit, own)]
        return [[_prefix(unit), f.position, f.event_id] for f in case]
    return [[_prefix(unit), f.position, f.event_id] for f in case or [] if f.position in positions]


def _prefix(unit: Unit) -> str:
    return f"{unit[0]}/{unit[1]}"


def _held(r: Any) -> _Held:
    return to_row(r), r["depth"] if r["loose"] else None


def _open_sums(
    views: Views, cursor: Any, table: str, changes: dict[SumKey, Any]
) -> dict[SumKey, tuple[Sum, int]]:
    """The open version of each sum of `changes` that has one: its sum and its valid_from."""
    totals: dict[SumKey, tuple[Sum, int]] = {}
    pairs = sorted({key[:2] for key in changes})
    for i in range(0, len(pairs), 250):
        chunk = pairs[i : i + 250]
        # A join with the pairs, not `(bucket, person) IN (VALUES …)`: SQLite scans the
        # whole table for that one.
        cursor.execute(
            views.sql(
                f"WITH p (bucket, person) AS (VALUES {', '.join(['(?, ?)'] * len(chunk))}) "
                f"SELECT {_sum_columns('s')}, s.valid_from FROM p JOIN {table} s "
                "ON s.bucket = p.bucket AND s.person = p.person AND s.valid_to = ?"
            ),
            [*(v for pair in chunk for v in pair), OPEN],
        )
        for r in cursor.fetchall():
            key = (r["bucket"], r["person"], r["kpi"], r["department"], r["label"])
            if key in changes:
                totals[key] = (_sum(r), r["valid_from"])
    return totals


def _version(key: str, position: int, prefix: str, row: Row, depth: int | None) -> list[Any]:
    """The stored version of a row from `position` on, in ROW_COLUMNS order."""
    return [key, position, None, prefix, row.kpi, row.department, row.person, row.entity,
            row.at, str(row.num), str(row.den), row.pending_until, row.label,
            orjson.dumps([row.num_refs, row.den_refs]).decode(), int(depth is not None),
            depth or 0]  # fmt: skip


def _sum_columns(alias: str) -> str:
    """SUM_COLUMNS of the table named `alias` in a join."""
    return ", ".join(f"{alias}.{c.strip()}" for c in SUM_COLUMNS.split(","))


def to_row(r: Any) -> Row:
    num_refs, den_refs = orjson.loads(r["refs"])
    key = r["row_key"].split("|", 1)[1]
    return Row(key, r["kpi"], r["department"], r["person"], r["entity"], r["at"],
               Decimal(r["num"]), Decimal(r["den"]), r["pending_until"], r["label"],
               tuple(num_refs), tuple(den_refs))  # fmt: skip


def _sum(r: Any) -> Sum:
    return parse(r["num"]), parse(r["den"]), int(r["entities"])


class StoredLoader:
    """The read model's sums and rows counted at position `cut`, for a report's periods."""

    def __init__(
        self, views: Views, cut: int, tz: Any, person: str | None, *, latest: bool = True
    ) -> None:
        self.views = views
        self.cut = cut
        self.tz = tz
        self.person = person
        self.latest = latest  # the cut is the last position (or close to it): a live read

    def rows(self, period: Period, kpis: tuple[str, ...] | None) -> list[Row]:
        """Every row of the period, as `kpis.RowsLoader` selects them."""
        with self.views.transaction(commit=False) as cursor:
            return self._rows(cursor, period, kpis)

    def parts(self, period: Period, kpis: tuple[str, ...] | None) -> Parts:
        start, end = period.window(self.tz)
        buckets = tiling(start, end)
        if buckets is None:
            return Parts({}, self.rows(period, kpis))
        table = self.views.table("rm_kpi_sums")
        marks = ", ".join("?" * len(buckets))
        if self.latest:
            # The versions in force now: the open ones, at the end of each bucket's range of
            # rm_kpi_sums_open (and any closed by appends since the cut).
            sql = (
                f"SELECT {SUM_COLUMNS} FROM {table} WHERE person = ? "
                f"AND bucket IN ({marks}) AND valid_to > ? AND valid_from <= ?"
            )
            params: list[Any] = [self.person or "", *(p.bucket for p in buckets)]
            params += [self.cut, self.cut]
            kpi_column = "kpi"
        else:
            # As of an earlier cut, most versions of a busy bucket were closed after it: look
            # up each key's version in force at the cut on the primary key instead.
            keys = self.views.table("rm_kpi_sum_keys")
            same = " AND ".join(f"m.{c} = k.{c}" for c in SUM_KEY_NAMES)
            latest = f"FROM {table} m WHERE {same} AND m.valid_from <= ? ORDER BY m.valid_from DESC"
            version = (
                f"CROSS JOIN LATERAL (SELECT m.* {latest} LIMIT 1) s"
                if self.views.kind == "postgresql"
                # no LATERAL in SQLite: the version's rowid, found by the same seek
                else f"JOIN {table} s ON s.rowid = (SELECT m.rowid {latest} LIMIT 1)"
            )
            sql = (
                f"SELECT {_sum_columns('s')} FROM {keys} k {version} "
                f"WHERE k.person = ? AND k.bucket IN ({marks}) AND s.valid_to > ?"
            )
            params = [self.cut, self.person or "", *(p.bucket for p in buckets), self.cut]
            kpi_column = "k.kpi"
        if kpis is not None:
            sql += f" AND {kpi_column} IN ({', '.join('?' * len(kpis))})"
            params += list(kpis)
        sums: dict[tuple[str, str, str, str], list[Any]] = {}
        with self.views.transaction(commit=False) as cursor:
            for _, person, kpi, department, label, num, den, n in self.views.select(
                cursor, self.views.sql(sql), params
            ):
                s = sums.setdefault((kpi, department, person, label), [0, 0, 0])
                s[0] += parse(num)
                s[1] += parse(den)
                s[2] += int(n)
            never = kpis is not None and set(kpis) <= NEVER_LOOSE
            rows = [] if never else self._loose(cursor, buckets, kpis)
        added: Sums = {k: (v[0], v[1], v[2]) for k, v in sums.items()}
        return Parts(added, rows)

    def _narrowed(
        self, sql: str, params: list[Any], kpis: tuple[str, ...] | None, *, kpi: str = "kpi"
    ) -> str:
        """`sql` limited to the loader's person (if any) and to `kpis` (if given); their values
        are added to `params`."""
        if self.person is not None:
            sql += " AND person = ?"
            params.append(self.person)
        if kpis is not None:
            sql += f" AND {kpi} IN ({', '.join('?' * len(kpis))})"
            params += list(kpis)
        return sql

    def _loose(self, cursor: Any, pieces: list[Piece], kpis: tuple[str, ...] | None) -> list[Row]:
        """The rows of the entities no chosen bucket holds whole: in each run of pieces of one
        depth, the loose rows whose entity's smallest bucket is shallower."""
        runs: list[list[Any]] = []  # [start, end, depth]
        for p in pieces:
            if runs and runs[-1][1] == p.start and runs[-1][2] == p.depth:
                runs[-1][1] = p.end
            else:
                runs.append([p.start, p.end, p.depth])
        selects: list[str] = []
        params: list[Any] = []
        # The versions still in force, by their range of rm_kpi_rows_loose; then those closed
        # after the cut: for a live read by the same index (not by time: the closed versions of a
        # period outnumber the rest), as of an earlier cut by the period's range of
        # rm_kpi_rows_loose_at. SQLite, without statistics, is told which index to use.
        closed = "rm_kpi_rows_loose" if self.latest else "rm_kpi_rows_loose_at"
        table = "{rm_kpi_rows}" + (f" INDEXED BY {closed}" if self.views.kind == "sqlite" else "")
        branches: tuple[tuple[str, list[Any], str], ...] = (
            ("valid_to IS NULL", [], "{rm_kpi_rows}"),
            ("valid_to > ?", [self.cut], table),
        )
        for version, bound, source in branches:
            for start, end, depth in runs:
                sql = (
                    f"SELECT {FIGURES} FROM {source} WHERE loose = 1 AND {version} "
                    f"AND depth IN ({', '.join('?' * depth)}) AND at >= ? AND at < ? "
                    "AND valid_from <= ?"
                )
                params += [*bound, *range(depth), start, end, self.cut]
                selects.append(self._narrowed(sql, params, kpis))
        found = self.views.select(cursor, self.views.sql(" UNION ALL ".join(selects)), params)
        decimals: dict[str, Decimal] = {}  # the same few numbers recur: parse each once

        def decimal(text: str) -> Decimal:
            value = decimals.get(text)
            if value is None:
                value = decimals[text] = Decimal(text)
            return value

        return [
            Row("", kpi, department, person, entity, at, decimal(num), decimal(den),
                pending_until, label)
            for kpi, department, person, entity, at, num, den, pending_until, label in found
        ]  # fmt: skip

    def _rows(self, cursor: Any, period: Period, kpis: tuple[str, ...] | None) -> list[Row]:
        start, end = period.window(self.tz)
        sql = (
            f"SELECT {COLUMNS} FROM {{rm_kpi_rows}} WHERE at >= ? AND at < ? "
            "AND valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)"
        )
        params: list[Any] = [start, end, self.cut, self.cut]
        cursor.execute(self.views.sql(self._narrowed(sql, params, kpis)), params)
        return [to_row(r) for r in cursor.fetchall()]


def stored_loader(
    views: Views, cut: int, tz: Any, person: str | None = None, *, latest: bool = True
) -> Loader:
    """Select what is counted at position `cut` in a period's window, as `rows_loader` does
    (`latest`: the cut is the ledger's last position, as for a read that is not as of a time;
    either way gives the same figures, each faster for its own kind of cut)."""
    return StoredLoader(views, cut, tz, person, latest=latest)
