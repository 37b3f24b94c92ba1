"""KPI read latency: one period, every department, from the KPI read model.

Builds a ledger of `--events` events (production batches with inspections, process records,
rework and shipments; material lots with tests; complaints with SLA items, answers,
attributions and costs; spread over the twelve months of 2026), catches the KPI read model up
(timed: that is what `ledger projections rebuild kpis` does), then times `--reads` reads of
`GET /v1/kpis?period=…` as the route computes them (read model query, figures, targets,
incentives, sealed JSON), and reports p50 / p99; then the same read as of the middle of the
history (`?as_of=`), which selects the versions counted at that position.

Run: `.venv/bin/python bench/kpis.py --events 20000` (a smoke run); the issue's goal is
`--events 1000000` with p99 under 50 ms. `--database postgresql://…` uses PostgreSQL (a schema of
its own is not created: give it an empty database).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

from ledger.api.app import settle_memory  # noqa: E402
from ledger.application import Ledger  # noqa: E402
from ledger.domain.events import Envelope, EnvelopeBase  # noqa: E402
from ledger.readmodels.kpis.query import KpiReads  # noqa: E402
from ledger.readmodels.kpis.report import seal  # noqa: E402
from ledger.readmodels.projections import Projections  # noqa: E402
from ledger.storage.database import Database  # noqa: E402
from ledger.storage.migrate import migrate  # noqa: E402

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)
CLOCK = datetime(2027, 1, 1, tzinfo=UTC)
YEAR = datetime(2026, 1, 1, tzinfo=UTC)
DEPARTMENTS = ("production", "quality", "sales", "procurement")


def actor(i: int, department: str) -> dict[str, str]:
    return {"id": f"E{i % 50}", "name": "n", "department": department}


def event(kind: str, stream: str, at: datetime, who: dict[str, str], data: Any) -> dict[str, Any]:
    stream_type = {"B": "batch", "M": "batch", "C": "complaint", "P": "plan"}[stream[0]]
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "stream": {"type": stream_type, "id": stream},
        "occurred_at": at.isoformat(),
        "actor": who,
        "data": data,
    }


def case(i: int) -> list[dict[str, Any]]:
    """About 20 events: a lot, a production batch made from it, a complaint about the batch."""
    at = YEAR + timedelta(minutes=(i * 7919) % (365 * 24 * 60 - 20 * 24 * 60))
    h = timedelta(hours=1)
    lot, batch, complaint = f"M-{i}", f"B-{i}", f"C-{i}"
    buyer, lab = actor(i, "procurement"), actor(i + 1, "quality")
    planner, sales = actor(i + 2, "production"), actor(i + 3, "sales")
    out = [
        event("batch.registered", lot, at, buyer,
              {"kind": "material", "product": "tube", "quantity": 1000, "supplier": "S"}),
        event("material.tested", lot, at + h, lab,
              {"result": "fail" if i % 13 == 0 else "pass", "report_id": f"R{i}"}),
        event("batch.registered", batch, at + 2 * h, planner,
              {"kind": "production", "product": "frame", "quantity": 500, "line": "L1",
               "material_lots": [lot]}),
        event("process.recorded", batch, at + 3 * h, planner,
              {"step": "weld", "within_spec": i % 7 != 0, "operator_id": f"E{i % 40}",
               "operator_qualified": True, "equipment_id": "W1", "equipment_ok": True}),
        event("inspection.recorded", batch, at + 4 * h, lab,
              {"stage": "in_process", "sample_size": 40, "defects": i % 3,
               "result": "fail" if i % 3 else "pass"}),
        event("inspection.recorded", batch, at + 5 * h, lab,
              {"stage": "final", "sample_size": 50, "defects": 0, "result": "pass"}),
        event("rework.recorded", batch, at + 6 * h, planner, {"units": i % 9, "scrapped": 0}),
        event("shipment.recorded", batch, at + 7 * h, sales,
              {"customer": f"K{i % 200}", "quantity": 500, "delivery_id": f"D{i}"}),
    ]  # fmt: skip
    if i % 4 == 0:
        out += [
            event("complaint.filed", complaint, at + 30 * h, sales,
                  {"customer": f"K{i % 200}", "batch_ids": [batch], "description": "d",
                   "severity": "minor"}),
            event("notification.sent", complaint, at + 31 * h, lab,
                  {"to_department": "production", "action": "rectification_plan"}),
            event("rectification.planned", complaint, at + (40 + i % 20) * h, planner,
                  {"plan": "p", "owner_id": planner["id"],
                   "due_at": (at + 200 * h).isoformat()}),
            event("cause.attributed", complaint, at + 50 * h, lab,
                  {"category": "process", "responsible_department": "production",
                   "controllable": i % 8 != 0}),
            event("notification.sent", complaint, at + 51 * h, lab,
                  {"to_department": "production", "action": "rectify"}),
            event("rectification.completed", complaint, at + 150 * h, planner, {"summary": "s"}),
            event("notification.sent", complaint, at + 151 * h, planner,
                  {"to_department": "quality", "action": "verify"}),
            event("verification.recorded", complaint, at + 160 * h, lab, {"result": "pass"}),
            event("quality_cost.recorded", complaint, at + 161 * h, lab,
                  {"amount": f"{100 + i % 900}.50", "currency": "CNY",
                   "category": "external_failure"}),
        ]  # fmt: skip
    return out


def plans() -> list[dict[str, Any]]:
    who = actor(0, "management")
    at = YEAR
    targets = [
        ("department", "production", "defect_rate_adjusted", "at_most", 0.02),
        ("department", "sales", "complaint_handling_timeliness", "at_least", 0.9),
        ("department", "quality", "rectification_completion_rate", "at_least", 0.9),
        ("enterprise", None, "sla_on_time_rate", "at_least", 0.8),
    ]
    out = [
        event("target.set", "P-2026", at, who,
              {"period": "2026", "level": level, "department": dept, "kpi": kpi,
               "direction": direction, "target": target})
        for level, dept, kpi, direction, target in targets
    ]  # fmt: skip
    out += [
        event("revenue.recorded", "P-2026", at + timedelta(days=31 * m), who,
              {"period": f"2026-{m + 1:02d}", "amount": "2400000.00", "currency": "CNY"})
        for m in range(12)
    ]  # fmt: skip
    return out


def fill(ledger: Ledger, count: int) -> int:
    pending = plans()
    i = 0
    appended = 0
    while appended + len(pending) < count:
        pending += case(i)
        i += 1
        if len(pending) >= 900:
            envelopes = [ADAPTER.validate_python(e) for e in pending]
            appended += ledger.append(envelopes, source="import").appended
            pending = []
    if pending:
        envelopes = [ADAPTER.validate_python(e) for e in pending]
        appended += ledger.append(envelopes, source="import").appended
    return appended


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the ledger")
    parser.add_argument("--reads", type=int, default=200, help="timed reads")
    parser.add_argument("--period", default="2026-06", help="the periods read, comma-separated")
    parser.add_argument("--database", help="a database URL (default: a temporary SQLite file)")
    parser.add_argument("--timezone", default="Asia/Shanghai")
    parser.add_argument(
        "--reads-only",
        action="store_true",
        help="only time the reads, on a --database this benchmark filled and caught up before",
    )
    args = parser.parse_args(argv)

    url = args.database or f"sqlite:///{tempfile.mkdtemp(prefix='ledger-kpis-')}/ledger.sqlite"
    database = Database.from_url(url)
    migrate(database)
    ledger = Ledger(database, clock=lambda: CLOCK)
    try:
        if args.reads_only:
            appended = ledger.last_position()
            middle = ledger.feed(appended // 2, 1)[0].recorded_at
            timed(
                KpiReads(Projections(ledger).kpis, ZoneInfo(args.timezone), CLOCK), args, middle, ""
            )
            return 0
        started = time.perf_counter()
        appended = fill(ledger, args.events)
        print(f"appended {appended} events in {time.perf_counter() - started:.1f} s")
        projections = Projections(ledger)
        started = time.perf_counter()
        projections.kpis.catch_up()
        took = time.perf_counter() - started
        print(f"KPI read model caught up in {took:.1f} s ({appended / took:.0f} events/s)")
        middle = ledger.feed(appended // 2, 1)[0].recorded_at
        timed(KpiReads(projections.kpis, ZoneInfo(args.timezone), CLOCK), args, middle, "")
        ledger.close()
        # as a server started on this database reads (the catch-up's write-ahead log checkpointed)
        ledger = Ledger(Database.from_url(url), clock=lambda: CLOCK)
        reads = KpiReads(Projections(ledger).kpis, ZoneInfo(args.timezone), CLOCK)
        timed(reads, args, middle, ", reopened")
    finally:
        ledger.close()
    return 0


def timed(reads: KpiReads, args: argparse.Namespace, middle: datetime, note: str) -> None:
    settle_memory()  # as `ledger serve` does once started
    print("load average before the reads: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    for period in args.period.split(","):
        for label, as_of in (("", None), (f"&as_of={middle.isoformat()}", middle)):
            times: list[float] = []
            for _ in range(args.reads):
                started = time.perf_counter()
                body, _ = reads.departments(period, None, as_of)
                orjson.dumps(seal(body))
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"GET /v1/kpis?period={period}{label} (all departments, position "
                f"{body['position']}{note}), {args.reads} reads: "
                f"p50 {statistics.median(times):.1f} ms, p99 {percentile(times, 99):.1f} ms"
            )


if __name__ == "__main__":
    raise SystemExit(main())
