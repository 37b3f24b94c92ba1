"""Append throughput of the ledger beside raw inserts of the same rows, in the same run.

For SQLite (a file in a temporary directory) and PostgreSQL (a database of its own, dropped at
the end) it measures events per second for single appends and for batches of 100:

* over HTTP: a real uvicorn server in a subprocess on a free 127.0.0.1 port, driven by one
  keep-alive HTTP client (http.client) sending one request at a time;
* through `Ledger.append` directly, in this process (envelopes validated beforehand);
* raw: the same rows, shaped like `ledger_events`, inserted with `sqlite3` (WAL,
  synchronous=FULL, same directory) or psycopg (autocommit per row; `executemany` in one
  transaction per 100 rows).

Run: `.venv/bin/python bench/append.py` (about 1–2 minutes), `--quick` for a smoke run,
`--events N` / `--batch-events N` to choose the counts, `--only sqlite|postgresql`.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import importlib.util
import os
import platform
import pstats
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402
import psycopg  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

from ledger.application import Ledger  # noqa: E402
from ledger.domain.events import Envelope, EnvelopeBase  # noqa: E402
from ledger.domain.stream import stream_uuid  # noqa: E402
from ledger.domain.time import utc_now  # noqa: E402
from ledger.storage.database import Database  # noqa: E402
from ledger.storage.keys import KeyStore  # noqa: E402
from ledger.storage.migrate import migrate  # noqa: E402

BATCH = 100
STREAM_LENGTH = 10  # events per stream: a batch.registered then nine inspections
DEFAULT_PG = "postgresql://root@127.0.0.1:5432/test"
SQLITE_STAMP = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)

# ----------------------------------------------------------------------------- workload


def envelope(tag: str, i: int) -> dict[str, Any]:
    """Event `i` of a run: streams of ten events, each opened by batch.registered."""
    stream = {"type": "batch", "id": f"B-{tag}-{i // STREAM_LENGTH:06d}"}
    common = {
        "event_id": str(uuid.uuid4()),
        "stream": stream,
        "occurred_at": "2026-11-02T08:15:00.123456+08:00",
        "actor": {"id": "u-0172", "name": "Li Wei", "department": "quality"},
        "attributes": {"shift": "B", "station": "QC-3", "work_order": f"WO-{i:08d}"},
    }
    if i % STREAM_LENGTH == 0:
        return {
            **common,
            "type": "batch.registered",
            "data": {
                "kind": "production",
                "product": "Housing 40-A",
                "quantity": 500,
                "line": "L1",
                "material_lots": ["M-2026-0007", "M-2026-0011"],
            },
        }
    return {
        **common,
        "type": "inspection.recorded",
        "data": {
            "stage": "in_process",
            "sample_size": 50,
            "defects": i % 3,
            "result": "pass",
            "defect_codes": ["D-12"] if i % 3 else [],
        },
    }


def workload(tag: str, count: int) -> list[dict[str, Any]]:
    return [envelope(tag, i) for i in range(count)]


RawRow = tuple[uuid.UUID, int, str, bytes]


def raw_rows(envelopes: Sequence[dict[str, Any]]) -> list[RawRow]:
    """The rows the ledger would store for these envelopes: same ids, versions and sizes."""
    rows: list[RawRow] = []
    for i, e in enumerate(envelopes):
        version = i % STREAM_LENGTH + 1
        record = {
            **e,
            "source": "local",
            "version": version,
            "prev_hash": uuid.uuid4().hex * 2,
            "hash": uuid.uuid4().hex * 2,
        }
        topic = "ledger.domain.batch:Batch." + ("Opened" if version == 1 else "Recorded")
        state = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        rows.append((stream_uuid("batch", e["stream"]["id"]), version, topic, state))
    return rows


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# ----------------------------------------------------------------------------- timing


@dataclass
class Result:
    backend: str
    mode: str  # "single" or "batch"
    path: str  # "raw", "ledger" or "http"
    events: int
    seconds: float
    cpu_seconds: float = 0.0  # CPU time of the process doing the work (the server, over HTTP)
    client_cpu_seconds: float | None = None  # over HTTP: the benchmark's own CPU (the client)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per event: steadier than the rate on a shared machine."""
        return 1e6 * self.cpu_seconds / self.events if self.events else 0.0

    @property
    def client_cpu_us(self) -> float | None:
        if self.client_cpu_seconds is None or not self.events:
            return None
        return 1e6 * self.client_cpu_seconds / self.events


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by this process, or by `pid`."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    args: argparse.Namespace
    results: list[Result] = field(default_factory=list)

    def timed(
        self,
        backend: str,
        mode: str,
        path: str,
        units: Sequence[Any],
        step: Callable[[Any], int],
        pid: int | None = None,
    ) -> None:
        """Call `step` for each unit (returns events done) until done or out of time; `pid` is
        the process whose CPU time is counted (None: this one)."""
        deadline = time.perf_counter() + self.args.max_seconds
        done = 0
        cpu = process_cpu(pid)
        own_cpu = time.process_time()
        start = time.perf_counter()
        for unit in units:
            done += step(unit)
            if time.perf_counter() > deadline:
                break
        seconds = time.perf_counter() - start
        result = Result(backend, mode, path, done, seconds, process_cpu(pid) - cpu)
        if pid is not None:
            result.client_cpu_seconds = time.process_time() - own_cpu
        self.results.append(result)
        client = (
            f", client {result.client_cpu_us:,.0f} µs CPU/event"
            if result.client_cpu_us is not None
            else ""
        )
        print(
            f"  {backend:<10} {path:<6} {mode:<6} {done:>7} events in {seconds:6.2f} s"
            f" = {result.rate:>9,.0f} ev/s, {result.cpu_us:>6,.0f} µs CPU/event{client}",
            flush=True,
        )


def split(envelopes: list[dict[str, Any]], warm: int) -> tuple[list[Any], list[Any]]:
    return envelopes[:warm], envelopes[warm:]


# ----------------------------------------------------------------------------- raw baselines

RAW_SQLITE_DDL = """
CREATE TABLE IF NOT EXISTS raw_events (
    notification_id INTEGER PRIMARY KEY AUTOINCREMENT,
    originator_id TEXT NOT NULL,
    originator_version INTEGER NOT NULL,
    topic TEXT NOT NULL,
    state BLOB NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (originator_id, originator_version)
)"""
RAW_SQLITE_INSERT = (
    "INSERT INTO raw_events (originator_id, originator_version, topic, state, recorded_at) "
    f"VALUES (?, ?, ?, ?, {SQLITE_STAMP})"
)


def raw_sqlite(run: Run, directory: Path, single: list[RawRow], batch: list[RawRow]) -> None:
    conn = sqlite3.connect(directory / "raw.sqlite", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(RAW_SQLITE_DDL)

    def params(r: RawRow) -> tuple[Any, ...]:
        return (r[0].hex, r[1], r[2], r[3])

    def one(row: RawRow) -> int:
        conn.execute(RAW_SQLITE_INSERT, params(row))  # autocommit: one commit per row
        return 1

    def many(rows: Sequence[RawRow]) -> int:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(RAW_SQLITE_INSERT, [params(r) for r in rows])
        conn.execute("COMMIT")
        return len(rows)

    warm, rest = split(single, run.args.warmup)
    for r in warm:
        one(r)
    run.timed("sqlite", "single", "raw", rest, one)
    run.timed("sqlite", "batch", "raw", chunks(batch, BATCH), many)
    conn.close()


RAW_PG_DDL = """
CREATE TABLE raw_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (originator_id, originator_version)
);
CREATE UNIQUE INDEX raw_events_notification_id_idx ON raw_events (notification_id ASC);
"""
RAW_PG_INSERT = (
    "INSERT INTO raw_events (originator_id, originator_version, topic, state) "
    "VALUES (%s, %s, %s, %s)"
)


def raw_postgres(run: Run, conninfo: str, single: list[RawRow], batch: list[RawRow]) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(RAW_PG_DDL)
        cur = conn.cursor()

        def one(row: RawRow) -> int:
            cur.execute(RAW_PG_INSERT, row, prepare=True)  # autocommit: one commit per row
            return 1

        def many(rows: Sequence[RawRow]) -> int:
            with conn.transaction():
                cur.executemany(RAW_PG_INSERT, rows)
            return len(rows)

        warm, rest = split(single, run.args.warmup)
        for r in warm:
            one(r)
        run.timed("postgresql", "single", "raw", rest, one)
        run.timed("postgresql", "batch", "raw", chunks(batch, BATCH), many)


# ----------------------------------------------------------------------------- the Ledger


@contextlib.contextmanager
def profiling(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)


def through_ledger(
    run: Run,
    backend: str,
    database: Database,
    single: list[dict[str, Any]],
    batch: list[dict[str, Any]],
) -> None:
    models_single = [ADAPTER.validate_python(e) for e in single]
    models_batch = [ADAPTER.validate_python(e) for e in batch]
    migrate(database)
    ledger = Ledger(database)
    try:

        def one(model: EnvelopeBase) -> int:
            ledger.append([model], source="local")
            return 1

        def many(models: Sequence[EnvelopeBase]) -> int:
            return ledger.append(models, source="local").appended

        warm, rest = split(models_single, run.args.warmup)
        for m in warm:
            one(m)
        profile = run.args.profile
        with profiling(profile / f"ledger-{backend}-single.prof" if profile else None):
            run.timed(backend, "single", "ledger", rest, one)
        with profiling(profile / f"ledger-{backend}-batch.prof" if profile else None):
            run.timed(backend, "batch", "ledger", chunks(models_batch, BATCH), many)
    finally:
        ledger.close()


# ----------------------------------------------------------------------------- over HTTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def server(run: Run, url: str, name: str) -> Iterator[tuple[str, int]]:
    """A uvicorn server in a subprocess; yields its base URL and process id."""
    port = free_port()
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_PORT": str(port)}
    command = [sys.executable]
    if run.args.profile:
        command += ["-m", "cProfile", "-o", str(run.args.profile / f"server-{name}.prof")]
    command += [
        "-m",
        "uvicorn",
        "--factory",
        "ledger.api.app:app_from_env",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--http",
        run.args.http,
        "--loop",
        run.args.loop,
    ]
    proc = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGINT)  # a clean stop, so a profile gets written
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def poster(
    client: str, base: str, headers: dict[str, str]
) -> Iterator[Callable[[bytes], tuple[int, str]]]:
    """One keep-alive HTTP/1.1 connection that POSTs bodies to /v1/events.

    `stdlib` is `http.client`: about a tenth of httpx's CPU per request, so the figure is
    the server's and not the client library's. `httpx` is what the first benchmarks used.
    """
    if client == "httpx":
        with httpx.Client(base_url=base, timeout=60) as c:

            def send_httpx(body: bytes) -> tuple[int, str]:
                r = c.post("/v1/events", content=body, headers=headers)
                return r.status_code, r.text if r.status_code != 201 else ""

            yield send_httpx
        return
    host, _, port = base.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:

        def send_stdlib(body: bytes) -> tuple[int, str]:
            conn.request("POST", "/v1/events", body=body, headers=headers)
            r = conn.getresponse()
            text = r.read()
            return r.status, text.decode() if r.status != 201 else ""

        yield send_stdlib
    finally:
        conn.close()


def over_http(
    run: Run,
    backend: str,
    url: str,
    single: list[dict[str, Any]],
    batch: list[dict[str, Any]],
) -> None:
    database = Database.from_url(url)
    migrate(database)
    ledger = Ledger(database)
    try:  # an integrator's key: the role that appends in production
        store = KeyStore.of(ledger.store, database.kind)
        key, _ = store.create("bench", "integrator", frozenset({"quality"}), utc_now())
    finally:
        ledger.close()
    single_bodies = [orjson.dumps(e) for e in single]
    batch_bodies = [orjson.dumps({"events": list(c)}) for c in chunks(batch, BATCH)]
    headers = {"content-type": "application/json", "authorization": f"Bearer {key}"}
    with server(run, url, backend) as (base, pid), poster(run.args.client, base, headers) as send:

        def post(body: bytes, count: int) -> int:
            status, text = send(body)
            if status != 201:
                raise RuntimeError(f"append failed: {status} {text[:300]}")
            return count

        warm, rest = split(single_bodies, run.args.warmup)
        for b in warm:
            post(b, 1)
        run.timed(backend, "single", "http", rest, lambda b: post(b, 1), pid)
        run.timed(backend, "batch", "http", batch_bodies, lambda b: post(b, BATCH), pid)


# ----------------------------------------------------------------------------- back-ends


def bench_sqlite(run: Run) -> None:
    args = run.args
    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        print(f"SQLite {sqlite3.sqlite_version} in {directory}", flush=True)
        n, m = args.events + args.warmup, args.batch_events
        raw_sqlite(run, directory, raw_rows(workload("r1", n)), raw_rows(workload("r2", m)))
        if not args.skip_ledger:
            database = Database.from_url(f"sqlite:///{directory / 'direct.sqlite'}")
            through_ledger(run, "sqlite", database, workload("d1", n), workload("d2", m))
        if not args.skip_http:
            url = f"sqlite:///{directory / 'http.sqlite'}"
            over_http(run, "sqlite", url, workload("h1", n), workload("h2", m))


def bench_postgres(run: Run) -> None:
    args = run.args
    admin = Database.from_url(args.postgres)
    conninfo = psycopg.conninfo.make_conninfo(
        host=admin.host, port=admin.port, user=admin.user, password=admin.password or None
    )
    name = f"ledger_bench_{os.getpid()}"
    with psycopg.connect(
        psycopg.conninfo.make_conninfo(conninfo, dbname=admin.name), autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(
            psycopg.conninfo.make_conninfo(conninfo, dbname=name), autocommit=True
        ) as conn:
            version = conn.execute("SHOW server_version").fetchone()
            for schema in ("raw", "direct", "http"):
                conn.execute(f"CREATE SCHEMA {schema}")
        print(f"PostgreSQL {version[0] if version else '?'}, database {name}", flush=True)
        auth = admin.user + (f":{admin.password}" if admin.password else "")
        url = f"postgresql://{auth}@{admin.host}:{admin.port}/{name}"
        n, m = args.events + args.warmup, args.batch_events
        raw_postgres(
            run,
            psycopg.conninfo.make_conninfo(conninfo, dbname=name, options="-csearch_path=raw"),
            raw_rows(workload("r1", n)),
            raw_rows(workload("r2", m)),
        )
        if not args.skip_ledger:
            database = Database.from_url(url + "?schema=direct")
            through_ledger(run, "postgresql", database, workload("d1", n), workload("d2", m))
        if not args.skip_http:
            over_http(run, "postgresql", url + "?schema=http", workload("h1", n), workload("h2", m))
    finally:
        with psycopg.connect(
            psycopg.conninfo.make_conninfo(conninfo, dbname=admin.name), autocommit=True
        ) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ----------------------------------------------------------------------------- report

# (backend, mode, path) → (kind, threshold, text): "ratio" of raw, or "rate" in events/s
GOALS: dict[tuple[str, str, str], tuple[str, float, str]] = {
    ("sqlite", "single", "http"): ("ratio", 0.15, "≥ 15 % of raw"),
    ("sqlite", "batch", "http"): ("ratio", 0.08, "≥ 8 % of raw"),
    # Issue 3's 30 % follows its PostgreSQL clause; on SQLite the storage of the event_id index
    # alone costs more than raw inserts do (docs/BENCHMARKS.md, "Which goal the 30 % is").
    ("postgresql", "batch", "ledger"): ("ratio", 0.30, "≥ 30 % of raw"),
    ("postgresql", "batch", "http"): ("rate", 5000, "≥ 5,000 ev/s"),
}


def report(run: Run) -> int:
    """Print the table; return the number of goals missed."""
    raw = {(r.backend, r.mode): r.rate for r in run.results if r.path == "raw"}
    missed = 0
    lines = [
        "",
        f"{'back-end':<11}{'path':<8}{'mode':<8}{'events/s':>10}{'raw ev/s':>11}{'ratio':>8}"
        f"{'µs CPU/ev':>11}  {'goal':<15}met?",
    ]
    for r in run.results:
        if r.path == "raw":
            continue
        base = raw.get((r.backend, r.mode), 0.0)
        ratio = r.rate / base if base else 0.0
        goal = GOALS.get((r.backend, r.mode, r.path))
        met = ""
        if goal:
            kind, threshold, _ = goal
            ok = (ratio if kind == "ratio" else r.rate) >= threshold
            met = "yes" if ok else "NO"
            missed += not ok
        lines.append(
            f"{r.backend:<11}{r.path:<8}{r.mode:<8}{r.rate:>10,.0f}{base:>11,.0f}"
            f"{ratio:>7.1%}{r.cpu_us:>11,.0f}  {goal[2] if goal else '':<15}{met}"
        )
    print("\n".join(lines))
    if run.args.json:
        rows = [
            {
                "backend": r.backend,
                "path": r.path,
                "mode": r.mode,
                "events": r.events,
                "seconds": round(r.seconds, 4),
                "events_per_second": round(r.rate, 1),
                "cpu_us_per_event": round(r.cpu_us, 1),
            }
            for r in run.results
        ]
        run.args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    return missed


def print_profiles(directory: Path) -> None:
    for path in sorted(directory.glob("*.prof")):
        print(f"\n===== {path.name} (top 25 by cumulative time)")
        pstats.Stats(str(path)).sort_stats("cumulative").print_stats(25)


def uvicorn_choice(option: str, fast: str, fallback: str) -> str:
    """What uvicorn runs for `--http`/`--loop` `option`: with "auto", `fast` if installed."""
    if option != "auto":
        return option
    return fast if importlib.util.find_spec(fast) is not None else fallback


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="single appends per measurement")
    parser.add_argument(
        "--batch-events", type=int, default=20000, help="events per batched measurement"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 / 2,000 events")
    parser.add_argument("--warmup", type=int, default=50, help="untimed single appends first")
    parser.add_argument(
        "--max-seconds", type=float, default=15.0, help="stop a measurement after this long"
    )
    parser.add_argument(
        "--client",
        choices=["stdlib", "httpx"],
        default="stdlib",
        help="the keep-alive HTTP client: stdlib (http.client, default) or httpx",
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one back-end only")
    parser.add_argument("--postgres", default=os.environ.get("LEDGER_BENCH_POSTGRES", DEFAULT_PG))
    parser.add_argument("--dir", help="where the SQLite files go (default: the system temp dir)")
    parser.add_argument(
        "--http", default="auto", help="uvicorn --http: auto (as `ledger serve`), h11, httptools"
    )
    parser.add_argument(
        "--loop", default="auto", help="uvicorn --loop: auto (as `ledger serve`), asyncio, uvloop"
    )
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-ledger", action="store_true")
    parser.add_argument("--profile", type=Path, help="write cProfile stats into this directory")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.batch_events = 200, 2000
    args.batch_events = max(BATCH, args.batch_events // BATCH * BATCH)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        args.profile = args.profile.resolve()

    print(
        f"Quality Ledger append benchmark — Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {args.events} single appends, {args.batch_events} events in "
        f"batches of {BATCH}, at most {args.max_seconds:g} s per measurement",
        flush=True,
    )
    if not args.skip_http:
        http = uvicorn_choice(args.http, "httptools", "h11")
        loop = uvicorn_choice(args.loop, "uvloop", "asyncio")
        print(f"uvicorn --http {args.http} ({http}) --loop {args.loop} ({loop})", flush=True)
    run = Run(args)
    started = time.perf_counter()
    if args.only in (None, "sqlite"):
        bench_sqlite(run)
    if args.only in (None, "postgresql"):
        bench_postgres(run)
    missed = report(run)
    print(
        f"\n{len(run.results)} measurements in {time.perf_counter() - started:.0f} s; "
        f"load average now {os.getloadavg()[0]:.2f} (other work on the machine skews the figures)"
    )
    if args.profile:
        print_profiles(args.profile)
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
