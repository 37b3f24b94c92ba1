"""Read-model benchmarks (issue 11): each figure beside the one it is judged against, measured in
the same run, on SQLite and PostgreSQL.

    .venv/bin/python bench/readmodels.py                       # every measurement, small sizes
    .venv/bin/python bench/readmodels.py --long --backend sqlite --long-events 2000
    .venv/bin/python bench/readmodels.py --real --rebuild --backend postgresql   # goal sizes
    git archive HEAD ledger migrations | tar -x -C /tmp/snap   # measure a commit, not the tree:
    .venv/bin/python bench/readmodels.py --source /tmp/snap

Measurements (each selected by its flag; none given runs them all):

--long    long streams: 1,000 events appended to a batch already holding N events
          (--long-events; with --long-stream complaint, 1,000 notifications appended to a
          complaint already holding N), against the same 1,000 in new streams of ten, with the
          server's own catch-up off; then each stored read model's catch-up of those 1,000
          (as `ledger projections run NAME --once` logs it), and the ratio long / new (goal
          ≤ 1.5×). The appends' own time is reported beside them.
--rebuild catch-up rate: `ledger projections rebuild` of each read model over M events
          (--rebuild-events), beside a plain sequential read of the same rows (sqlite3 /
          psycopg); the ratio of the rates.
--pace    keeping pace: the append ceiling (single-event appends, --clients connections, no
          reads), then a steady load at half of it for D seconds (--pace-seconds) while each
          stored read model is read back to back (its lag: how long a read that must count
          every acknowledged append takes), then the same load on a server whose catch-up is
          off (--stop-projections-env, LEDGER_SERVE_PROJECTIONS=false); append p50/p99 of both
          and the ratio of the p99s.
--reads   reads at scale: p50/p99 of an SLA board read, the timeline and the responsibility
          chain of a complaint whose batch holds B events (--big-batch) beside one whose batch
          holds ten, and the KPI read, live and as of the middle of M events (--reads-events).

The ledger is driven only from outside, as an operator would: `ledger migrate`, `ledger keys
create`, `ledger import` (JSONL written here), `ledger projections rebuild` and `ledger serve`,
whose HTTP API is then read and appended to with `http.client`. Every wait has a bound
(--timeout): what does not finish in time is reported as "did not finish in T s", and the server
that was still working on it is stopped before the next measurement. Each measurement gets a
fresh ledger: a SQLite file in a temporary directory, or a PostgreSQL schema of its own
(LEDGER_BENCH_POSTGRES_URL, default postgresql://root@127.0.0.1:5432/test) dropped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[1]
LEDGER = str(ROOT / ".venv" / "bin" / "ledger")
PG_URL = os.environ.get("LEDGER_BENCH_POSTGRES_URL", "postgresql://root@127.0.0.1:5432/test")
START = datetime(2025, 1, 1, tzinfo=UTC)  # every event occurs in January 2025 or soon after
PERIOD = "2025-01"
READS_SLA_TICK = 86400.0  # the reads run without the SLA watcher appending escalations
APPENDED = 1000  # events appended in the long-stream measurement
PEOPLE = {
    d: {"id": f"E-{d[:3]}", "name": d.title(), "department": d}
    for d in ("procurement", "production", "quality", "sales")
}
ERROR_LINE = re.compile(r"^[A-Za-z_.]*(Error|Exception|Timeout)\b|.* failed: ")
REAL = {  # the sizes of the goals
    "long_events": 100_000,
    "rebuild_events": 1_000_000,
    "pace_seconds": 60.0,
    "reads_events": 1_000_000,
    "big_batch": 100_000,
    "timeout": 3600.0,
}


# ---------------------------------------------------------------- events


def envelope(
    kind: str, stream: tuple[str, str], who: str, at: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "stream": {"type": stream[0], "id": stream[1]},
        "occurred_at": at.isoformat(),
        "actor": PEOPLE[who],
        "data": data,
    }


def registered(batch: str, at: datetime) -> dict[str, Any]:
    data = {"kind": "production", "product": "frame", "quantity": 100, "line": "L1"}
    return envelope("batch.registered", ("batch", batch), "production", at, data)


def inspected(batch: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    data = {"stage": "in_process", "sample_size": 5, "defects": rng.randint(0, 1)}
    data["result"] = "pass" if data["defects"] == 0 else "fail"
    return envelope("inspection.recorded", ("batch", batch), "quality", at, data)


def complaint(complaint_id: str, batch: str, at: datetime) -> list[dict[str, Any]]:
    """A complaint about `batch`, with quality asking production to investigate."""
    stream = ("complaint", complaint_id)
    filed = {"customer": "K1", "batch_ids": [batch], "description": "cracks", "severity": "major"}
    ask = {"to_department": "production", "action": "investigate"}
    return [
        envelope("complaint.filed", stream, "sales", at, filed),
        envelope("notification.sent", stream, "quality", at + timedelta(hours=1), ask),
    ]


def stream_of(batch: str, events: int, at: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """A batch of `events` events: its registration, then in-process inspections a second apart."""
    out = [registered(batch, at)]
    out += [inspected(batch, at + timedelta(seconds=i), rng) for i in range(1, events)]
    return out


def case(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """About 8.4 events: a lot, a batch made from it, and for one in five a complaint about it
    (notifications, a plan, an attribution, a closure; some answers late)."""
    t = START + timedelta(minutes=3 * n)
    lot, batch, comp = ("batch", f"M-{n}"), ("batch", f"B-{n}"), ("complaint", f"C-{n}")
    events: list[tuple[str, tuple[str, str], str, dict[str, Any]]] = [
        ("batch.registered", lot, "procurement",
         {"kind": "material", "product": "tube", "quantity": 1000, "supplier": "S"}),
        ("material.tested", lot, "quality",
         {"result": rng.choice(["pass"] * 9 + ["fail"]), "report_id": f"R{n}"}),
        ("batch.registered", batch, "production",
         {"kind": "production", "product": "frame", "quantity": 100, "material_lots": [lot[1]]}),
        ("process.recorded", batch, "production",
         {"step": "weld", "within_spec": rng.random() > 0.1, "operator_id": f"O{n % 40}",
          "operator_qualified": rng.random() > 0.05, "equipment_id": "W1", "equipment_ok": True}),
        ("inspection.recorded", batch, "quality",
         {"stage": "final", "sample_size": 50, "defects": rng.randint(0, 3), "result": "pass"}),
        ("shipment.recorded", batch, "sales",
         {"customer": f"K{n % 97}", "quantity": 100, "delivery_id": f"D{n}"}),
    ]  # fmt: skip
    if n % 5 == 0:
        events += [
            ("complaint.filed", comp, "sales",
             {"customer": f"K{n % 97}", "batch_ids": [batch[1]], "description": "cracks",
              "severity": "major"}),
            ("notification.sent", comp, "quality",
             {"to_department": "production", "action": "rectification_plan"}),
            ("rectification.planned", comp, "production",
             {"plan": "p", "owner_id": "E-pro", "due_at": "2026-01-01T00:00:00Z"}),
            ("cause.attributed", comp, "quality",
             {"category": "operator", "responsible_department": "production",
              "controllable": True}),
            ("notification.sent", comp, "quality",
             {"to_department": "sales", "action": "confirm_customer"}),
            ("complaint.closed", comp, "sales", {"customer_satisfied": True}),
        ]  # fmt: skip
    out = []
    for i, (kind, stream, who, data) in enumerate(events):
        hours = i * (30 if kind == "rectification.planned" and n % 3 == 0 else 2)
        out.append(envelope(kind, stream, who, t + timedelta(hours=hours), data))
    return out


def cases(events: int, rng: random.Random, first: int = 0) -> Iterator[dict[str, Any]]:
    """Cases numbered from `first` until `events` events were given."""
    given, n = 0, first
    while given < events:
        for e in case(n, rng)[: events - given]:
            given += 1
            yield e
        n += 1


def write_jsonl(path: Path, events: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w") as f:
        for e in events:
            f.write(json.dumps(e, separators=(",", ":")) + "\n")
            count += 1
    return count


# ---------------------------------------------------------------- figures


def pct(values: list[float], q: float) -> float:
    """The q-th percentile by nearest rank (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


Took = float | str | None  # seconds; what went wrong; None: did not finish in time


def secs(seconds: Took, timeout: float) -> str:
    if isinstance(seconds, str):
        return f"failed: {seconds}"
    return f"did not finish in {timeout:,.0f} s" if seconds is None else f"{seconds:,.2f} s"


def ratio(a: Took, b: Took) -> str:
    if not isinstance(a, float) or not isinstance(b, float) or b <= 0:
        return "–"
    return f"{a / b:,.2f}×"


@dataclass
class Report:
    """Lines printed as measured, repeated together at the end."""

    lines: list[str] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)


# ---------------------------------------------------------------- the ledger, from outside


class DidNotFinish(Exception):
    pass


@dataclass
class Backend:
    kind: str  # sqlite | postgresql
    url: str
    workdir: Path
    schema: str | None = None
    source: str = ""  # a directory whose `ledger` package runs instead of the installed one

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env.update(LEDGER_DATABASE_URL=self.url, **extra)
        if self.source:
            env["PYTHONPATH"] = self.source
        return env

    def run(
        self, args: list[str], timeout: float, *, log: bool = False, **extra: str
    ) -> tuple[float, str]:
        """Run `ledger ARGS`; (seconds, stdout, or stderr with `log`). DidNotFinish past
        `timeout`."""
        began = time.perf_counter()
        try:
            done = subprocess.run(
                [LEDGER, *args], env=self.env(**extra), capture_output=True, text=True,
                timeout=timeout, cwd=self.workdir,
            )  # fmt: skip
        except subprocess.TimeoutExpired as e:
            raise DidNotFinish(f"ledger {' '.join(args)}") from e
        seconds = time.perf_counter() - began
        if done.returncode != 0 and args[:2] != ["projections", "rebuild"]:
            raise RuntimeError(f"ledger {' '.join(args)} failed: {done.stderr[-2000:]}")
        return seconds, done.stderr if log else done.stdout

    def raw_read(self) -> tuple[int, float]:
        """(rows, seconds) of SELECT * of the events table in position order."""
        began = time.perf_counter()
        count = 0
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            for _ in conn.execute("SELECT * FROM ledger_events ORDER BY notification_id"):
                count += 1
            conn.close()
        else:
            with psycopg.connect(PG_URL) as conn, conn.cursor(name="raw") as cur:
                cur.itersize = 1000
                cur.execute(f'SELECT * FROM "{self.schema}".ledger_events ORDER BY notification_id')
                for _ in cur:
                    count += 1
        return count, time.perf_counter() - began


@contextmanager
def fresh(kind: str, label: str, source: str) -> Iterator[Backend]:
    """A migrated, empty ledger of its own, removed afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-rm-{label}-"))
    schema = f"bench_rm_{label}_{os.getpid()}"
    try:
        if kind == "sqlite":
            backend = Backend(kind, f"sqlite:///{workdir / 'ledger.sqlite'}", workdir, None, source)
        else:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.execute(f'CREATE SCHEMA "{schema}"')
            backend = Backend(kind, f"{PG_URL}?schema={schema}", workdir, schema, source)
        backend.run(["migrate"], timeout=120)
        yield backend
    finally:
        if kind == "postgresql":
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(workdir, ignore_errors=True)


def import_events(backend: Backend, events: Iterable[dict[str, Any]], timeout: float) -> str:
    """`ledger import` of the events; a line saying how many and how fast."""
    path = backend.workdir / f"import-{uuid.uuid4().hex[:8]}.jsonl"
    count = write_jsonl(path, events)
    seconds, _ = backend.run(["import", str(path), "--batch-size", "1000"], timeout)
    path.unlink()
    return f"{count:,} events in {seconds:,.1f} s ({count / seconds:,.0f}/s)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`ledger serve` on a free port, with an admin key made before it starts."""

    def __init__(self, backend: Backend, sla_tick: float, extra_env: dict[str, str]) -> None:
        self.backend = backend
        _, out = backend.run(
            ["keys", "create", "--role", "admin", "--name", f"bench-{uuid.uuid4().hex[:8]}"], 60
        )
        self.key = out.strip().splitlines()[-1]
        self.port = free_port()
        self.log = (backend.workdir / f"serve-{self.port}.log").open("w")
        env = backend.env(LEDGER_SLA_TICK_SECONDS=str(sla_tick), **extra_env)
        self.process = subprocess.Popen(
            [LEDGER, "serve", "--port", str(self.port)], env=env, cwd=backend.workdir,
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ledger serve exited: {self.tail()}")
            try:
                if Client(self).get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ledger serve did not answer /healthz in 60 s: {self.tail()}")

    def last_error(self) -> str:
        """The last exception the server logged, if any."""
        self.log.flush()
        lines = Path(self.log.name).read_text().splitlines()
        found = [line for line in lines if ERROR_LINE.match(line)]
        return found[-1][:300] if found else "nothing logged"

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-2000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Client:
    """One keep-alive HTTP/1.1 connection to the server, with its key."""

    def __init__(self, server: Server, timeout: float = 60.0) -> None:
        self.server, self.timeout = server, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        self.headers = {"Authorization": f"Bearer {server.key}"}

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):  # a keep-alive connection the server closed: once more
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if attempt == 2:
                    raise
        parsed = json.loads(data) if data and data[:1] in (b"{", b"[") else data
        return response.status, parsed

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def append(self, events: list[dict[str, Any]]) -> int:
        """POST the events (one, or a batch); the last receipt's position."""
        body = events[0] if len(events) == 1 else {"events": events}
        status, answer = self.request("POST", "/v1/events", json.dumps(body).encode())
        if status not in (200, 201):
            raise RuntimeError(f"append answered {status}: {answer}")
        return int(answer["receipts"][-1]["position"])

    def close(self) -> None:
        self.conn.close()


def failure(server: Server, path: str, status: int, body: Any) -> str:
    detail = body.get("detail", "") if isinstance(body, dict) else str(body)[:200]
    return f"GET {path} answered {status} ({detail}); server log: {server.last_error()}"


def counted(server: Server, path: str, position: int, deadline: float) -> Took:
    """Read `path` until it answers 200 counting `position` (a 503 read-model-behind is asked
    again at once); the time it took, None past `deadline` (monotonic)."""
    client = Client(server, timeout=max(1.0, deadline - time.monotonic()))
    began = time.perf_counter()
    try:
        while time.monotonic() < deadline:
            try:
                status, body = client.get(path)
            except (TimeoutError, OSError):
                return None
            if status == 200 and int(body["position"]) >= position:
                return time.perf_counter() - began
            if status not in (200, 503):
                return failure(server, path, status, body)
        return None
    finally:
        client.close()


def all_counted(
    server: Server, reads: dict[str, str], position: int, timeout: float, began: float
) -> dict[str, Took]:
    """Each read polled in its own thread at once; seconds from `began` (perf_counter) until
    it counted `position`, None if it did not within `timeout`, or what went wrong."""
    deadline = time.monotonic() + timeout
    done: dict[str, Took] = {}

    def poll(name: str, path: str) -> None:
        try:
            took = counted(server, path, position, deadline)
        except Exception as e:  # reported, not lost in a thread
            took = f"{type(e).__name__}: {e}"
        done[name] = time.perf_counter() - began if isinstance(took, float) else took

    threads = [threading.Thread(target=poll, args=item) for item in reads.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done


# ---------------------------------------------------------------- 1. long streams


CAUGHT_UP = re.compile(r"(\S+) counted (\d+) event\(s\) in ([0-9.]+) s")


def catch_up(backend: Backend, name: str, timeout: float) -> Took:
    """Seconds of one read model's catch-up, as `ledger projections run NAME --once` logs it
    (the command's start and the opening of the ledger left out)."""
    try:
        _, log = backend.run(["projections", "run", name, "--once"], timeout, log=True)
    except DidNotFinish:
        return None
    found = [float(m[3]) for m in CAUGHT_UP.finditer(log) if m[1] == name]
    return found[-1] if found else f"no catch-up logged: {log[-300:]}"


def notified(complaint_id: str, at: datetime) -> dict[str, Any]:
    ask = {"to_department": "production", "action": "investigate"}
    return envelope("notification.sent", ("complaint", complaint_id), "quality", at, ask)


@dataclass
class Shape:
    """What --long appends: a setup holding a long stream, then APPENDED events onto it or
    into new streams."""

    what: str
    setup: list[dict[str, Any]]
    new: list[dict[str, Any]]
    onto_long: list[dict[str, Any]]


def batch_shape(n: int, rng: random.Random) -> Shape:
    setup = stream_of("L", n, START, rng) + stream_of("S", 10, START, rng)
    setup += complaint("C-L", "L", START + timedelta(days=2))
    setup += complaint("C-S", "S", START + timedelta(days=2))
    at = START + timedelta(days=3)
    new = [e for s in range(APPENDED // 10) for e in stream_of(f"N-{s}", 10, at, rng)]
    onto_long = [inspected("L", at + timedelta(seconds=i), rng) for i in range(APPENDED)]
    return Shape(f"a batch of {n:,}", setup, new, onto_long)


def complaint_shape(n: int, rng: random.Random) -> Shape:
    """A complaint of `n` events (its filing and notifications), then notifications."""
    at = START + timedelta(days=2)
    setup = stream_of("L", 10, START, rng) + complaint("C-L", "L", at)[:1]
    setup += [notified("C-L", at + timedelta(minutes=i)) for i in range(1, n)]
    later = START + timedelta(days=3)
    new = [
        e
        for c in range(APPENDED // 10)
        for e in complaint(f"C-N-{c}", "L", later)[:1]
        + [notified(f"C-N-{c}", later + timedelta(minutes=i)) for i in range(1, 10)]
    ]
    onto_long = [notified("C-L", later + timedelta(minutes=i)) for i in range(APPENDED)]
    return Shape(f"a complaint of {n:,}", setup, new, onto_long)


def long_streams(kind: str, args: argparse.Namespace, say: Report) -> None:
    n, rng = args.long_events, random.Random(1)
    shape = (complaint_shape if args.long_stream == "complaint" else batch_shape)(n, rng)
    say(f"\n## long streams, {kind}: {APPENDED:,} events onto {shape.what}, or new streams")
    with fresh(kind, "long", args.source) as backend:
        say(f"- setup: import {import_events(backend, shape.setup, args.timeout)}")
        try:
            seconds, _ = backend.run(["projections", "rebuild"], args.timeout)
            say(f"- setup: `ledger projections rebuild` of {len(shape.setup):,} events: "
                f"{seconds:.1f} s")  # fmt: skip
        except DidNotFinish:
            say(f"- setup: `ledger projections rebuild` did not finish in {args.timeout:.0f} s")
            return
        # The server appends only: each read model then catches up on the 1,000 alone.
        off = {"LEDGER_SERVE_PROJECTIONS": "false"}
        server = Server(backend, 3600, off)
        models = args.models.split(",")
        figures: dict[str, dict[str, Took]] = {}
        try:
            for label, events in (("new", shape.new), ("long", shape.onto_long)):
                client = Client(server)
                began = time.perf_counter()
                for i in range(0, APPENDED, 100):
                    client.append(events[i : i + 100])
                figures.setdefault("append (POST /v1/events, batches of 100)", {})[label] = (
                    time.perf_counter() - began
                )
                client.close()
                for name in models:
                    figures.setdefault(f"{name} catch-up", {})[label] = catch_up(
                        backend, name, args.timeout
                    )
        finally:
            server.stop()
        say("")
        say(f"| ({kind}, N = {n:,}) | new streams | onto N | ratio (goal ≤ 1.5×) |")
        say("|---|---:|---:|---:|")
        for what, by in figures.items():
            say(
                f"| {what} | {secs(by.get('new'), args.timeout)} | "
                f"{secs(by.get('long'), args.timeout)} | {ratio(by.get('long'), by.get('new'))} |"
            )


# ---------------------------------------------------------------- 2. catch-up rate


def rebuild_rate(kind: str, args: argparse.Namespace, say: Report) -> None:
    m = args.rebuild_events
    say(f"\n## catch-up rate, {kind}: `ledger projections rebuild` of {m:,} events")
    with fresh(kind, "rebuild", args.source) as backend:
        say(f"- import {import_events(backend, cases(m, random.Random(2)), args.timeout)}")
        rows, raw_s = backend.raw_read()
        raw = rows / raw_s
        say(f"- raw sequential read (SELECT * … ORDER BY notification_id): {rows:,} rows in "
            f"{raw_s:.2f} s, {raw:,.0f} events/s")  # fmt: skip
        start_s, _ = backend.run(["projections", "rebuild", "no-such-read-model"], 120)
        say(f"- fixed cost of the command (start, open, refuse an unknown name): {start_s:.2f} s, "
            "taken off each rebuild below")  # fmt: skip
        say("")
        say(f"| read model ({kind}, M = {m:,}) | seconds | events/s | of raw | goal |")
        say("|---|---:|---:|---:|---|")
        total: float | None = 0.0
        for name in args.models.split(","):
            try:
                seconds, _ = backend.run(["projections", "rebuild", name], args.timeout)
            except DidNotFinish:
                say(f"| {name} | did not finish in {args.timeout:.0f} s | – | – | |")
                total = None
                continue
            net = max(1e-9, seconds - start_s)
            total = None if total is None else total + net
            say(f"| {name} | {net:,.1f} | {m / net:,.0f} | {m / net / raw:.2%} | |")
        if total is not None:
            say(f"| all, one after the other | {total:,.1f} | {m / total:,.0f} | "
                f"{m / total / raw:.2%} | ≥ 10,000/s (30,000) |")  # fmt: skip
        else:
            say("| all, one after the other | did not finish | – | – | ≥ 10,000/s (30,000) |")


# ---------------------------------------------------------------- 3. keeping pace


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    last_position: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def append_load(server: Server, streams: int, clients: int, rate: float | None, seconds: float,
                load: Load) -> None:  # fmt: skip
    """Single-event appends from `clients` connections for `seconds`: back to back (rate None),
    or each connection on a fixed schedule adding up to `rate` per second."""
    began = time.perf_counter()
    stop = began + seconds

    def worker(w: int) -> None:
        client, rng, i = Client(server, timeout=30), random.Random(w), 0
        while True:
            if rate is not None:
                due = began + (i * clients + w) / rate
                if due >= stop:
                    break
                if (pause := due - time.perf_counter()) > 0:
                    time.sleep(pause)
            elif time.perf_counter() >= stop:
                break
            event = inspected(f"P-{rng.randrange(streams)}", START + timedelta(days=5), rng)
            sent = time.perf_counter()
            try:
                position = client.append([event])
            except (RuntimeError, OSError):
                with load.lock:
                    load.errors += 1
                i += 1
                continue
            took = time.perf_counter() - sent
            with load.lock:
                load.latencies.append(took)
                load.last_position = max(load.last_position, position)
            i += 1
        client.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - began


def lag_sampler(server: Server, path: str, load: Load, stop: threading.Event, every: float,
                samples: list[float], behind: list[int], failures: list[str]) -> None:  # fmt: skip
    """Read `path` every `every` seconds (back to back if 0): each read must count every append
    acknowledged before it was sent, so its time is the read model's lag at that moment (a 503
    counts its 5 s wait)."""
    client = Client(server, timeout=60)
    while not stop.wait(every) if every > 0 else not stop.is_set():
        with load.lock:
            wanted = load.last_position
        sent = time.perf_counter()
        try:
            status, body = client.get(path)
        except OSError:
            continue
        took = time.perf_counter() - sent
        if status == 503:
            behind[0] += 1
        elif status != 200:
            failures.append(failure(server, path, status, body))
            continue
        elif int(body["position"]) < wanted:
            raise RuntimeError(f"GET {path} counted {body['position']} < {wanted}")
        samples.append(took)
    client.close()


def keeping_pace(kind: str, args: argparse.Namespace, say: Report) -> None:
    d, streams = args.pace_seconds, args.pace_streams
    say(f"\n## keeping pace, {kind}: single-event appends at half the ceiling for {d:g} s")
    reads = {"sla_board": "/v1/sla", "kpis": f"/v1/kpis?period={PERIOD}",
             "casefiles": "/v1/batches/P-0/timeline?limit=1"}  # fmt: skip
    with fresh(kind, "pace", args.source) as backend:
        at = START + timedelta(days=4)
        batches = (registered(f"P-{s}", at) for s in range(streams))
        say(f"- setup: import {import_events(backend, batches, args.timeout)}")
        backend.run(["projections", "rebuild"], args.timeout)
        server = Server(backend, args.sla_tick, {})
        try:
            ceiling = Load()
            append_load(server, streams, args.clients, None, args.ceiling_seconds, ceiling)
            top = len(ceiling.latencies) / ceiling.seconds
            rate = top / 2
            say(f"- append ceiling ({args.clients} connections, back to back, no reads): "
                f"{top:,.0f} events/s; load: {rate:,.0f} events/s")  # fmt: skip
            # catch the read models up with the ceiling's appends before the clock starts
            ready = all_counted(server, reads, ceiling.last_position, args.timeout,
                                time.perf_counter())  # fmt: skip
            if not all(isinstance(v, float) for v in ready.values()):
                say(f"- the read models did not catch up with the ceiling run in "
                    f"{args.timeout:.0f} s: {ready}")  # fmt: skip
                return
            on = Load()
            stop = threading.Event()
            lags: dict[str, list[float]] = {name: [] for name in reads}
            behind: dict[str, list[int]] = {name: [0] for name in reads}
            failed: dict[str, list[str]] = {name: [] for name in reads}
            samplers = [
                threading.Thread(target=lag_sampler,
                                 args=(server, path, on, stop, args.lag_every, lags[name],
                                       behind[name], failed[name]))
                for name, path in reads.items()
            ]  # fmt: skip
            for t in samplers:
                t.start()
            append_load(server, streams, args.clients, rate, d, on)
            stop.set()
            for t in samplers:
                t.join(timeout=args.timeout)
            off = Load()
            if args.stop_projections_env:  # a server that can stop its projections
                server.stop()
                name, _, value = args.stop_projections_env.partition("=")
                server = Server(backend, args.sla_tick, {name: value})
                note = f"a server started with {args.stop_projections_env}"
            else:  # today a read model catches up only when a read asks: no reads, no work
                note = "the same server, no reads (a read model catches up only when read)"
            append_load(server, streams, args.clients, rate, d, off)
        finally:
            server.stop()
        say(f"- projections stopped: {note}")
        for name, failures in failed.items():
            if failures:
                say(f"- {len(failures)} read(s) of {name} failed, the last: {failures[-1]}")
        say("")
        say(f"| {kind}, {rate:,.0f} events/s for {d:g} s | p50 | p99 | max | samples | 503s |")
        say("|---|---:|---:|---:|---:|---:|")
        for name, samples in lags.items():
            if samples:
                say(f"| lag of {name} (goal p99 < 2 s) | {ms(pct(samples, 50))} | "
                    f"{ms(pct(samples, 99))} | {ms(max(samples))} | {len(samples)} | "
                    f"{behind[name][0]} |")  # fmt: skip
            else:
                say(f"| lag of {name} | no read finished | | | 0 | {behind[name][0]} |")
        for label, load in (("projections running", on), ("projections stopped", off)):
            done = len(load.latencies)
            say(f"| append, {label} ({done / load.seconds:,.0f}/s done, {load.errors} failed) | "
                f"{ms(pct(load.latencies, 50))} | {ms(pct(load.latencies, 99))} | "
                f"{ms(max(load.latencies))} | {done} | |")  # fmt: skip
        p99_on, p99_off = pct(on.latencies, 99), pct(off.latencies, 99)
        say(f"\n- append p99 running / stopped: {ratio(p99_on, p99_off)} (goal ≤ 1.5×)")


# ---------------------------------------------------------------- 4. reads at scale


def timed_reads(server: Server, path: str, count: int, budget: float) -> list[float] | str | None:
    """`count` reads of `path` (200 each), their seconds; None if the first exceeds `budget`,
    or what went wrong."""
    client = Client(server, timeout=budget)
    out: list[float] = []
    deadline = time.monotonic() + budget
    try:
        for _ in range(count):
            began = time.perf_counter()
            try:
                status, body = client.get(path)
            except TimeoutError:
                return None
            if status != 200:
                return failure(server, path, status, body)
            out.append(time.perf_counter() - began)
            if time.monotonic() > deadline:
                break
    finally:
        client.close()
    return out


def read_table(server: Server, reads: dict[str, str], warm: dict[str, Took], as_of: str,
               title: str, args: argparse.Namespace, say: Report) -> dict[str, float]:  # fmt: skip
    """p50/p99 of each read, live and as of the cut (a table, or more rows of the last one
    with no title); the p50s by name."""
    if title:
        say("")
        say(f"| read ({title}) | live p50 | live p99 | as-of p50 | as-of p99 | goal |")
        say("|---|---:|---:|---:|---:|---|")
    p50s: dict[str, float] = {}
    for name, path in reads.items():
        if not isinstance(warm.get(name, 0.0), float):
            say(f"| {name} | read model did not catch up | | | | |")
            continue
        row = []
        for cut in ("", as_of):
            label = f"{name}{' as-of' if cut else ''}"
            sep = "&" if "?" in path else "?"
            got = timed_reads(server, path + (sep + cut if cut else ""), args.read_count,
                              args.read_budget)  # fmt: skip
            if isinstance(got, list):
                row += [ms(pct(got, 50)), ms(pct(got, 99))]
                p50s[label] = pct(got, 50)
            else:
                row += ["did not finish" if got is None else "failed", ""]
                if got is not None:
                    say(f"- {label}: {got}")
        goal = "p99 < 50 ms" if "KPI" in name else "p99 < 20 ms live, < 50 ms as-of"
        say(f"| {name} | {' | '.join(row)} | {goal} |")
    return p50s


def reads_at_scale(kind: str, args: argparse.Namespace, say: Report) -> None:
    m, b, rng = args.reads_events, args.big_batch, random.Random(3)
    say(f"\n## reads at scale, {kind}: {m:,} events of cases around a batch of {b:,}")
    with fresh(kind, "reads", args.source) as backend:
        if b + 2 > m // 2:
            raise SystemExit(f"--big-batch {b} must be under half of --reads-events {m}")
        half = m // 2 - b - 2  # cases, then the big batch and its complaint end at the middle
        big = stream_of("BIG", b, START + timedelta(days=10), rng)
        big += complaint("C-BIG", "BIG", START + timedelta(days=11))
        rest = cases(m - b - half - 2, rng, first=half // 6 + 1)  # a case holds 6 events or more
        events = [*cases(half, rng), *big, *rest]
        say(f"- setup: import {import_events(backend, events, args.timeout)}")
        server = Server(backend, READS_SLA_TICK, {})  # no escalations while reads are timed
        try:
            client = Client(server)
            _, feed = client.get(f"/v1/events?after={len(events) // 2 - 1}&limit=1")
            middle = feed["events"][0]["recorded_at"]
            client.close()
            as_of = "as_of=" + middle.replace("+", "%2B")
            reads = {
                f"SLA board (/v1/sla?{args.sla_query})": f"/v1/sla?{args.sla_query}",
                f"timeline, batch of {b:,}": "/v1/complaints/C-BIG/timeline",
                "timeline, batch of 4": "/v1/complaints/C-0/timeline",
                f"responsibility, batch of {b:,}": "/v1/complaints/C-BIG/responsibility",
                "responsibility, batch of 4": "/v1/complaints/C-0/responsibility",
                f"KPIs (/v1/kpis?period={PERIOD})": f"/v1/kpis?period={PERIOD}",
            }
            # the server catches every read model up in its background; each read is timed
            # once its read model counts every event
            kpis = {k: v for k, v in reads.items() if v.startswith("/v1/kpis")}
            others = {k: v for k, v in reads.items() if k not in kpis}
            warm = all_counted(server, reads, len(events), args.timeout, time.perf_counter())
            p50s = read_table(server, others, warm, as_of, f"{kind}, {m:,} events", args, say)
            read_table(server, kpis, warm, as_of, "", args, say)
            say("")
            for name, took in warm.items():
                say(f"- first read of {name} counting every event (the read models catching up "
                    "from 0 in the server's background): "
                    f"{secs(took, args.timeout)}")  # fmt: skip
            say("")
            for read in ("timeline", "responsibility"):
                for cut in ("", " as-of"):
                    big_p50 = p50s.get(f"{read}, batch of {b:,}{cut}")
                    small_p50 = p50s.get(f"{read}, batch of 4{cut}")
                    say(f"- {read}{cut}, p50 batch of {b:,} / batch of 4: "
                        f"{ratio(big_p50, small_p50)} (goal: the same time)")  # fmt: skip
        finally:
            server.stop()


# ---------------------------------------------------------------- main


def code(source: str) -> str:
    """Which ledger the run measures."""
    if source:
        return f"the ledger package in {source}"
    rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    return f"the working tree at {rev}"


def machine() -> str:
    load = os.getloadavg()
    return (f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, {os.cpu_count()} cores, load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip


MEASUREMENTS: dict[str, Callable[[str, argparse.Namespace, Report], None]] = {
    "long": long_streams,
    "rebuild": rebuild_rate,
    "pace": keeping_pace,
    "reads": reads_at_scale,
}


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    for name in MEASUREMENTS:
        p.add_argument(f"--{name}", action="store_true", help=f"run the {name} measurement")
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both",
                   help="back-end(s) to measure")  # fmt: skip
    p.add_argument("--real", action="store_true", help="the goals' sizes: " + ", ".join(
        f"--{k.replace('_', '-')} {v:.0f}" for k, v in REAL.items()))  # fmt: skip
    p.add_argument("--long-events", type=int, default=2000, help="N: the long stream's events")
    p.add_argument("--long-stream", choices=("batch", "complaint"), default="batch",
                   help="--long: the long stream is a batch (inspections) or a complaint "
                        "(notifications)")  # fmt: skip
    p.add_argument("--rebuild-events", type=int, default=20_000, help="M for the rebuild")
    p.add_argument(
        "--models", default="sla_board,kpis,casefiles", help="the stored read models to measure"
    )
    p.add_argument("--pace-seconds", type=float, default=10.0, help="D: seconds of steady load")
    p.add_argument("--pace-streams", type=int, default=200, help="batches the load appends to")
    p.add_argument(
        "--lag-every",
        type=float,
        default=0.1,
        help="seconds between a read model's lag reads (0: back to back)",
    )
    p.add_argument("--ceiling-seconds", type=float, default=5.0, help="of the ceiling run")
    p.add_argument("--clients", type=int, default=4, help="connections of the append load")
    p.add_argument("--stop-projections-env", default="LEDGER_SERVE_PROJECTIONS=false",
                   metavar="NAME=VALUE",
                   help="a server setting that stops its projections (comparison run)")  # fmt: skip
    p.add_argument("--reads-events", type=int, default=20_000, help="M for the reads")
    p.add_argument("--big-batch", type=int, default=2000, help="B: events of the big batch")
    p.add_argument("--read-count", type=int, default=100, help="reads of each kind")
    p.add_argument("--read-budget", type=float, default=30.0, help="seconds for each kind")
    p.add_argument("--sla-query", default="department=production&state=met_late",
                   help="query of the SLA board read (a page, once it is paged)")  # fmt: skip
    p.add_argument("--sla-tick", type=float, default=10.0, help="LEDGER_SLA_TICK_SECONDS")
    p.add_argument("--source", default="", metavar="DIR",
                   help="run the `ledger` package in DIR (e.g. `git archive REV ledger migrations "
                        "| tar -x -C DIR`) instead of the working tree's")  # fmt: skip
    p.add_argument("--timeout", type=float, default=300.0, help="bound of every wait, seconds")
    args = p.parse_args(argv)
    if args.real:
        for k, v in REAL.items():
            if getattr(args, k) == p.get_default(k):
                setattr(args, k, v)
    return args


def main(argv: list[str]) -> None:
    args = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # servers stop, schemas are dropped
    chosen = [n for n in MEASUREMENTS if getattr(args, n)] or list(MEASUREMENTS)
    kinds = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    say = Report()
    say(f"# bench/readmodels.py {' '.join(argv)}")
    say(f"- code: {code(args.source)}")
    say(f"- start: {machine()}")
    for name in chosen:
        for kind in kinds:
            try:
                MEASUREMENTS[name](kind, args, say)
            except DidNotFinish as e:
                say(f"- {e}: did not finish in {args.timeout:.0f} s")
            say(f"- after {name}, {kind}: {machine()}")
    say(f"- end: {machine()}")


if __name__ == "__main__":
    main(sys.argv[1:])
