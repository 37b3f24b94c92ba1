"""What each event contributes to the KPIs of SPEC §7.4: rows, a pure function of one stream.

A row is one contribution (an inspection's defects and sample, a lot's test, an SLA item, …) to
one KPI of one department, and of one person for the personal KPIs. It carries the time that
places it in a period (`at`, UTC), the entity it counts for (a batch, a lot, a complaint, or the
event itself when contributions simply add up) and the events it rests on, so a KPI can always be
traced back to the ledger, corrections included: a row resting on a corrected event also rests
on the corrections of it. A stream's rows depend on its own events; a production batch's also
on the complaints that name it (their attributions and filing times), given as `context`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.domain.time import format_time, parse_time
from ledger.readmodels.facts import Fact, effective_data
from ledger.readmodels.sla.evolve import PolicyHistory, effective_time, sla_items

PRODUCTION, PROCUREMENT, QUALITY, SALES = "production", "procurement", "quality", "sales"
ENTERPRISE = ""  # the department of enterprise-wide rows (quality costs)
SHIPPED_CUSTOMERS = "shipped_customers"  # not a KPI itself: feeds repurchase_rate
# Contributions to these KPIs are combined per entity with "all of" (MIN), the rest "any of" (MAX).
ALL_OF = frozenset({"complaint_handling_timeliness"})
# Which events can change the rows of the batches a complaint names.
LINKING_TYPES = frozenset({"complaint.filed", "cause.attributed", "event.corrected"})


@dataclass(frozen=True)
class Row:
    """One contribution: `num` and `den` add to the KPI's numerator and denominator."""

    key: str  # unique within its stream
    kpi: str
    department: str
    person: str  # "" unless the KPI is also a personal one
    entity: str
    at: str  # format_time of the moment that places it in a period
    num: Decimal
    den: Decimal
    pending_until: str | None = None  # an unanswered SLA item counts only once it is due
    label: str = ""
    num_refs: tuple[str, ...] = ()
    den_refs: tuple[str, ...] = ()


def number(value: Any) -> Decimal:
    """A JSON number or decimal string as an exact Decimal (a float by its shortest repr)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


ONE, ZERO = Decimal(1), Decimal(0)


def named_batches(complaint: list[Fact]) -> set[str]:
    """Every batch a complaint names or ever named, in its filing or in a correction of it."""
    filed = {f.event_id for f in complaint if f.type == "complaint.filed"}
    names: set[str] = set()
    for f in complaint:
        if f.type == "complaint.filed":
            names.update(f.record["data"].get("batch_ids", []))
        elif f.type == "event.corrected" and f.record["data"]["corrects_event_id"] in filed:
            names.update(f.record["data"]["data"].get("batch_ids", []))
    return names


def stream_rows(
    facts: list[Fact], context: list[Fact], policies: PolicyHistory, trusted: frozenset[str]
) -> list[Row]:
    """The rows of one stream's counted `facts`; `context` holds the events of the complaints
    that may name it (only those that name it, with corrections applied, count)."""
    if not facts:
        return []
    ordered = sorted(facts, key=lambda f: f.position)
    data = effective_data(ordered)
    stream_type, stream_id = ordered[0].stream
    rows: list[Row] = []
    if stream_type in ("batch", "complaint"):
        rows += _sla_rows(ordered, policies, trusted, complaint=stream_type == "complaint")
        rows += _rectification_rows(ordered, data, policies, trusted)
    rows += cost_rows(ordered, data)
    if stream_type == "complaint":
        rows += _complaint_rows(ordered, data, stream_id)
    elif stream_type == "batch":
        registered = next((f for f in ordered if f.type == "batch.registered"), None)
        if registered is not None:
            kind = data[registered.event_id]["kind"]
            if kind == "material":
                rows += lot_rows(ordered, data, stream_id, str(registered.record["actor"]["id"]))
            else:
                rows += _production_rows(ordered, data, stream_id, registered, context)
    fixes = corrections([*ordered, *context])
    return [with_corrections(r, fixes) for r in rows] if fixes else rows


# The KPIs of a batch's SLA items and rectifications: `case_rows` gives them all.
CASE_KPIS = (
    "sla_on_time_rate", "penalty_points", "complaint_handling_timeliness",
    "rectification_completion_rate",
)  # fmt: skip


def case_rows(case: list[Fact], policies: PolicyHistory, trusted: frozenset[str]) -> list[Row]:
    """A batch's rows of CASE_KPIS from its `case`: its notifications, the answers, plans,
    completions and verifications, and the corrections of them. They depend on no other event
    of the batch, so these rows are those `stream_rows` gives of the whole batch."""
    ordered = sorted(case, key=lambda f: f.position)
    rows = [
        *_sla_rows(ordered, policies, trusted, complaint=False),
        *_rectification_rows(ordered, effective_data(ordered), policies, trusted),
    ]
    fixes = corrections(ordered)
    return [with_corrections(r, fixes) for r in rows] if fixes else rows


def corrections(facts: list[Fact]) -> dict[str, tuple[str, ...]]:
    """The corrections among `facts` of each event they correct, in position order."""
    found: dict[str, tuple[str, ...]] = {}
    for f in sorted(facts, key=lambda f: f.position):
        if f.type == "event.corrected":
            target = f.record["data"]["corrects_event_id"]
            found[target] = (*found.get(target, ()), f.event_id)
    return found


def with_corrections(row: Row, fixes: dict[str, tuple[str, ...]]) -> Row:
    """`row` resting also on the corrections of the events it rests on."""

    def refs(ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for i in ids for e in (i, *fixes.get(i, ()))))

    if not any(i in fixes for i in (*row.num_refs, *row.den_refs)):
        return row
    return replace(row, num_refs=refs(row.num_refs), den_refs=refs(row.den_refs))


def _sla_rows(
    ordered: list[Fact], policies: PolicyHistory, trusted: frozenset[str], *, complaint: bool
) -> Iterable[Row]:
    stream_id = ordered[0].stream[1]
    for item in sla_items(ordered, policies, trusted):
        nid, due, done = item["notification_event_id"], item["due_at"], item["fulfilled_at"]
        met = done is not None and done <= due
        pending = due if done is None else None
        refs = (nid,) + ((item["fulfilled_by"],) if done is not None else ())
        dept = item["department"]
        yield Row(f"sla_on_time_rate|{nid}", "sla_on_time_rate", dept, "", nid, due,
                  ONE if met else ZERO, ONE, pending, "", refs if met else (), refs)  # fmt: skip
        if not met:
            points = number(item["breach_penalty_points"])
            yield Row(f"penalty_points|{nid}", "penalty_points", dept, "", nid, due, points,
                      ZERO, pending, "", refs, ())  # fmt: skip
        if complaint:
            yield Row(f"complaint_handling_timeliness|{nid}", "complaint_handling_timeliness",
                      SALES, "", stream_id, due, ONE if met else ZERO, ONE, None, "",
                      refs if met else (), refs)  # fmt: skip


def _rectification_rows(
    ordered: list[Fact],
    data: dict[str, dict[str, Any]],
    policies: PolicyHistory,
    trusted: frozenset[str],
) -> Iterable[Row]:
    for plan in ordered:
        if plan.type != "rectification.planned":
            continue
        d = data[plan.event_id]
        due = parse_time(d["due_at"])
        done = next(
            (
                f
                for f in ordered
                if f.type == "rectification.completed" and f.position > plan.position
            ),
            None,
        )
        on_time = (
            done is not None and effective_time(done, policies.at(done.position), trusted) <= due
        )
        checks = [
            f
            for f in ordered
            if done is not None and f.type == "verification.recorded" and f.position > done.position
        ]
        verified = bool(checks) and data[checks[-1].event_id]["result"] == "pass"
        refs = tuple(f.event_id for f in (plan, done, *checks[-1:]) if f is not None)
        yield Row(f"rectification_completion_rate|{plan.event_id}",
                  "rectification_completion_rate", plan.record["actor"]["department"],
                  str(d["owner_id"]), plan.event_id, format_time(due),
                  ONE if on_time and verified else ZERO, ONE, None, "",
                  refs if on_time and verified else (), refs)  # fmt: skip


def cost_rows(ordered: list[Fact], data: dict[str, dict[str, Any]]) -> Iterable[Row]:
    for f in ordered:
        if f.type == "quality_cost.recorded":
            d = data[f.event_id]
            yield Row(f"quality_cost|{f.event_id}", "quality_cost", ENTERPRISE, "", f.event_id,
                      format_time(f.occurred_at), number(d["amount"]), ZERO, None,
                      f"{d['currency']} {d['category']}", (f.event_id,), ())  # fmt: skip


def _complaint_rows(
    ordered: list[Fact], data: dict[str, dict[str, Any]], complaint_id: str
) -> Iterable[Row]:
    for f in ordered:
        if f.type == "complaint.filed":
            yield Row(f"complaint_rate|{f.event_id}", "complaint_rate", SALES, "",
                      f"complaint:{complaint_id}", format_time(f.occurred_at), ONE, ZERO, None,
                      "", (f.event_id,), ())  # fmt: skip


def lot_rows(
    ordered: list[Fact], data: dict[str, dict[str, Any]], lot_id: str, buyer: str
) -> Iterable[Row]:
    for f in ordered:
        d = data[f.event_id]
        if f.type == "material.tested" or (
            f.type == "inspection.recorded" and d["stage"] == "incoming"
        ):
            failed = d["result"] == "fail"
            yield Row(f"material_reject_rate|{f.event_id}", "material_reject_rate", PROCUREMENT,
                      buyer, lot_id, format_time(f.occurred_at), ONE if failed else ZERO, ONE,
                      None, "", (f.event_id,) if failed else (), (f.event_id,))  # fmt: skip


def _production_rows(
    ordered: list[Fact],
    data: dict[str, dict[str, Any]],
    batch_id: str,
    registered: Fact,
    context: list[Fact],
) -> Iterable[Row]:
    left_out, filings = batch_context(ordered, data, batch_id, context)
    reworks = [f for f in ordered if f.type == "rework.recorded"]
    units = sum((number(data[f.event_id]["units"]) for f in reworks), ZERO)
    quantity = number(data[registered.event_id]["quantity"])
    yield Row(f"rework_rate|{batch_id}", "rework_rate", PRODUCTION, "", batch_id,
              format_time(registered.occurred_at), units, quantity, None, "",
              tuple(f.event_id for f in reworks),
              (registered.event_id, *(f.event_id for f in reworks)))  # fmt: skip
    for f in ordered:
        yield from production_event_rows(f, data[f.event_id], batch_id, left_out, filings)


def batch_context(
    ordered: list[Fact], data: dict[str, dict[str, Any]], batch_id: str, context: list[Fact]
) -> tuple[bool, list[tuple[datetime, str]]]:
    """Whether a production batch's latest attribution leaves it out of defect_rate_adjusted,
    and the (occurred_at, event id) of the filings of the complaints that name it."""
    complaints = _naming_complaints(context, batch_id)
    attribution = _latest_attribution(ordered, data, complaints)
    left_out = attribution is not None and (
        not attribution[1]["controllable"] or attribution[1]["responsible_department"] != PRODUCTION
    )
    filings = [
        (f.occurred_at, f.event_id) for c in complaints for f in c if f.type == "complaint.filed"
    ]
    return left_out, filings


def production_event_rows(
    f: Fact,
    d: dict[str, Any],
    batch_id: str,
    left_out: bool,
    filings: list[tuple[datetime, str]],
) -> Iterable[Row]:
    """The rows of one event of a production batch with data `d` (not its rework_rate row)."""
    at = format_time(f.occurred_at)
    eid = f.event_id
    if f.type == "inspection.recorded" and d["stage"] in ("in_process", "final"):
        defects, sample = number(d["defects"]), number(d["sample_size"])
        num_refs = (eid,) if defects else ()
        yield Row(f"defect_rate|{eid}", "defect_rate", PRODUCTION, "", eid, at, defects,
                  sample, None, "", num_refs, (eid,))  # fmt: skip
        if not left_out:
            yield Row(f"defect_rate_adjusted|{eid}", "defect_rate_adjusted", PRODUCTION, "",
                      eid, at, defects, sample, None, "", num_refs, (eid,))  # fmt: skip
        if d["stage"] == "final" and d["result"] == "pass":
            later = tuple(c for when, c in filings if when > f.occurred_at)
            yield Row(f"inspection_miss_rate|{eid}", "inspection_miss_rate", QUALITY,
                      str(f.record["actor"]["id"]), batch_id, at, ONE if later else ZERO, ONE,
                      None, "", (eid, *later) if later else (), (eid,))  # fmt: skip
    elif f.type == "process.recorded":
        ok = bool(d["within_spec"])
        yield Row(f"process_compliance_rate|{eid}", "process_compliance_rate", PRODUCTION,
                  str(d["operator_id"]), eid, at, ONE if ok else ZERO, ONE, None, "",
                  (eid,) if ok else (), (eid,))  # fmt: skip
    elif f.type == "shipment.recorded":
        yield Row(f"complaint_rate|{eid}", "complaint_rate", SALES, "", f"batch:{batch_id}",
                  at, ZERO, ONE, None, "", (), (eid,))  # fmt: skip
        customer = str(d["customer"])
        yield Row(f"{SHIPPED_CUSTOMERS}|{eid}", SHIPPED_CUSTOMERS, SALES, "", customer, at,
                  ZERO, ONE, None, customer, (), (eid,))  # fmt: skip


def _naming_complaints(context: list[Fact], batch_id: str) -> list[list[Fact]]:
    """The complaints among `context` whose (corrected) filing names `batch_id`."""
    by_stream: dict[tuple[str, str], list[Fact]] = {}
    for f in sorted(context, key=lambda f: f.position):
        by_stream.setdefault(f.stream, []).append(f)
    naming = []
    for complaint in by_stream.values():
        data = effective_data(complaint)
        if any(
            f.type == "complaint.filed" and batch_id in data[f.event_id].get("batch_ids", [])
            for f in complaint
        ):
            naming.append(complaint)
    return naming


def _latest_attribution(
    batch: list[Fact], data: dict[str, dict[str, Any]], complaints: list[list[Fact]]
) -> tuple[Fact, dict[str, Any]] | None:
    """The last recorded `cause.attributed` on the batch or on a complaint that names it."""
    found = [(f, data[f.event_id]) for f in batch if f.type == "cause.attributed"]
    for complaint in complaints:
        cdata = effective_data(complaint)
        found += [(f, cdata[f.event_id]) for f in complaint if f.type == "cause.attributed"]
    return max(found, key=lambda pair: pair[0].position, default=None)


def ledger_rows(facts: list[Fact], trusted: frozenset[str]) -> list[Row]:
    """Every row of the counted `facts` at once: the straightforward recomputation."""
    streams: dict[tuple[str, str], list[Fact]] = {}
    for f in sorted(facts, key=lambda f: f.position):
        streams.setdefault(f.stream, []).append(f)
    policies = PolicyHistory([f for f in facts if f.stream[0] == "plan"])
    naming: dict[str, list[Fact]] = {}
    for key, stream in streams.items():
        if key[0] == "complaint":
            for batch_id in named_batches(stream):
                naming.setdefault(batch_id, []).extend(stream)
    rows: list[Row] = []
    for key, stream in streams.items():
        context = naming.get(key[1], []) if key[0] == "batch" else []
        rows += stream_rows(stream, context, policies, trusted)
    return rows
