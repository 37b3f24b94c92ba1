"""Replay benchmark (issue 4): rebuild rate of each stored read model beside a raw sequential read
of the same events, and p50/p99 latency of the timeline, responsibility and SLA reads, live and
as-of. (The timeline and the responsibility chain are computed from the event streams on read.)

    .venv/bin/python bench/replay.py --events 100000 [--backend sqlite|postgresql|both]

The ledger is filled with synthetic but realistic cases (a material lot, a production batch, and
for one batch in five a complaint with notifications, answers, an attribution and a closure),
appended in batches through `Ledger.append`. Nothing is left behind: the SQLite file lives in a
temporary directory, the PostgreSQL data in a schema of its own that is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.application import Ledger
from ledger.domain.events import ENVELOPE_MODELS
from ledger.readmodels.projections import Projections
from ledger.readmodels.responsibility.query import Responsibilities
from ledger.readmodels.sla.query import SlaReads
from ledger.readmodels.timeline.query import Timelines
from ledger.storage.database import Database
from ledger.storage.migrate import migrate

PG_URL = os.environ.get("LEDGER_BENCH_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
START = datetime(2025, 1, 1, tzinfo=UTC)
PEOPLE = {
    d: {"id": f"E-{d[:3]}", "name": d.title(), "department": d}
    for d in ("procurement", "production", "quality", "sales")
}


def case(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """About ten events: a lot, a batch made from it, and sometimes a complaint about it."""
    t = START + timedelta(minutes=3 * n)
    lot, batch, complaint = f"M-{n}", f"B-{n}", f"C-{n}"
    events: list[tuple[str, str, str, str, dict[str, Any]]] = [
        ("batch.registered", lot, "procurement", "batch",
         {"kind": "material", "product": "tube", "quantity": 1000, "supplier": "S"}),
        ("material.tested", lot, "quality", "batch",
         {"result": rng.choice(["pass"] * 9 + ["fail"]), "report_id": f"R{n}"}),
        ("batch.registered", batch, "production", "batch",
         {"kind": "production", "product": "frame", "quantity": 100, "material_lots": [lot]}),
        ("process.recorded", batch, "production", "batch",
         {"step": "weld", "within_spec": rng.random() > 0.1, "operator_id": f"O{n % 40}",
          "operator_qualified": rng.random() > 0.05, "equipment_id": "W1",
          "equipment_ok": True}),
        ("inspection.recorded", batch, "quality", "batch",
         {"stage": "final", "sample_size": 50, "defects": rng.randint(0, 3), "result": "pass"}),
        ("shipment.recorded", batch, "sales", "batch",
         {"customer": f"K{n % 97}", "quantity": 100, "delivery_id": f"D{n}"}),
    ]  # fmt: skip
    if n % 5 == 0:
        late = rng.random() < 0.3
        events += [
            ("complaint.filed", complaint, "sales", "complaint",
             {"customer": f"K{n % 97}", "batch_ids": [batch], "description": "cracks",
              "severity": "major"}),
            ("notification.sent", complaint, "quality", "complaint",
             {"to_department": "production", "action": "rectification_plan"}),
            ("rectification.planned", complaint, "production", "complaint",
             {"plan": "p", "owner_id": "E-pro", "due_at": "2026-01-01T00:00:00Z"}),
            ("cause.attributed", complaint, "quality", "complaint",
             {"category": "operator", "responsible_department": "production",
              "controllable": True}),
            ("notification.sent", complaint, "quality", "complaint",
             {"to_department": "sales", "action": "confirm_customer"}),
            ("complaint.closed", complaint, "sales", "complaint", {"customer_satisfied": True}),
        ]  # fmt: skip
        if late:
            events.insert(8, events.pop(7))  # plan after the attribution: hours later
    out = []
    for i, (kind, stream_id, who, stream_type, data) in enumerate(events):
        hours = i * (30 if kind == "rectification.planned" and n % 3 == 0 else 2)
        out.append(
            {
                "event_id": str(uuid.uuid4()),
                "type": kind,
                "stream": {"type": stream_type, "id": stream_id},
                "occurred_at": (t + timedelta(hours=hours)).isoformat(),
                "actor": PEOPLE[who],
                "data": data,
            }
        )
    return out


def fill(ledger: Ledger, events: int, rng: random.Random) -> int:
    """Append cases until `events` are stored; returns the number of cases."""
    n = stored = 0
    pending: list[Any] = []
    began = time.perf_counter()
    while stored + len(pending) < events:
        pending += [ENVELOPE_MODELS[e["type"]].model_validate(e) for e in case(n, rng)]
        n += 1
        if len(pending) >= 500:
            stored += ledger.append(pending, source="import").appended
            pending = []
            if n % 2000 == 0:
                rate = stored / (time.perf_counter() - began)
                print(f"  filled {stored:,} events ({rate:,.0f}/s)", file=sys.stderr)
    if pending:
        stored += ledger.append(pending, source="import").appended
    return n


def raw_read(database: Database) -> float:
    """Events/s of a plain sequential read of the stored events, pages of 1,000."""
    began = time.perf_counter()
    count = last = 0
    if database.kind == "sqlite":
        conn = sqlite3.connect(database.path)
        while rows := conn.execute(
            "SELECT notification_id, state FROM ledger_events WHERE notification_id > ? "
            "ORDER BY notification_id LIMIT 1000",
            (last,),
        ).fetchall():
            count += len(rows)
            last = rows[-1][0]
        conn.close()
    else:
        with psycopg.connect(_conninfo(database)) as conn:
            while rows := conn.execute(
                f'SELECT notification_id, state FROM "{database.schema}".ledger_events '
                "WHERE notification_id > %s ORDER BY notification_id LIMIT 1000",
                (last,),
            ).fetchall():
                count += len(rows)
                last = rows[-1][0]
    return count / (time.perf_counter() - began)


def _conninfo(database: Database) -> str:
    return f"host={database.host} port={database.port} user={database.user} dbname={database.name}"


def latencies(call: Callable[[], Any], times: int) -> tuple[float, float]:
    samples = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def run(kind: str, events: int, reads: int, models: list[str]) -> list[tuple[str, str]]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        if kind == "sqlite":
            database = Database.from_url(f"sqlite:///{tmp}/bench.sqlite")
        else:
            with psycopg.connect(_conninfo(Database.from_url(PG_URL)), autocommit=True) as c:
                c.execute(f"CREATE SCHEMA {schema}")
            database = Database.from_url(f"{PG_URL}?schema={schema}")
        try:
            migrate(database)
            ledger = Ledger(database)
            began = time.perf_counter()
            cases = fill(ledger, events, rng)
            fill_rate = ledger.last_position() / (time.perf_counter() - began)
            total = ledger.last_position()
            projections = Projections(ledger)
            raw = raw_read(database)
            rebuilds = {}
            for name, runner in projections.runners.items():
                if models and name not in models:
                    continue
                began = time.perf_counter()
                runner.rebuild()
                rebuilds[name] = total / (time.perf_counter() - began)
            now = datetime.now(UTC)
            disputes = Responsibilities(ledger, now)
            board = SlaReads(projections.board, now)
            timelines = Timelines(ledger)
            complaints = [f"C-{n}" for n in range(0, cases, 5)]
            feed_sample = ledger.feed(total // 2, 1)
            as_of = feed_sample[0].recorded_at if feed_sample else None
            rows = [
                ("fill (Ledger.append, batches of 500)", f"{fill_rate:,.0f} events/s"),
                ("raw sequential read", f"{raw:,.0f} events/s"),
            ] + [
                (f"rebuild of {name}", f"{rate:,.0f} events/s ({rate / raw:.1%} of raw)")
                for name, rate in rebuilds.items()
            ]

            # as-of reads ask about complaints filed before the cut (later ones are a 404 then)
            early = complaints[: max(1, len(complaints) // 2)]
            reads_of: list[tuple[str, list[str], Callable[[str], Any]]] = [
                ("timeline live", complaints, lambda c: timelines.complaint_timeline(c, None)),
                ("timeline as-of", early, lambda c: timelines.complaint_timeline(c, as_of)),
                ("responsibility live", complaints,
                 lambda c: disputes.complaint_responsibility(c, None)),
                ("responsibility as-of", early,
                 lambda c: disputes.complaint_responsibility(c, as_of)),
                ("SLA board, production, breached, live", complaints,
                 lambda c: board.sla_board("breached", "production", None)),
                ("SLA board, production, breached, as-of", complaints,
                 lambda c: board.sla_board("breached", "production", as_of)),
            ]  # fmt: skip
            for label, pool, read in reads_of:
                n = reads if "board" not in label else max(5, reads // 20)
                p50, p99 = latencies(lambda: read(rng.choice(pool)), n)  # noqa: B023
                rows.append((f"{label} ({n} reads)", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
            ledger.close()
            return [(f"{kind}: {label}", value) for label, value in rows] + [
                (f"{kind}: events", f"{total:,}")
            ]
        finally:
            if kind == "postgresql":
                with psycopg.connect(_conninfo(Database.from_url(PG_URL)), autocommit=True) as c:
                    c.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=200, help="reads per latency figure")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--models", nargs="*", default=[], help="read models to rebuild (all)")
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    print(f"# replay benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for kind in kinds:
        for label, value in run(kind, args.events, args.reads, args.models):
            print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
