"""The `ledger` command line."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ledger import cli_keys
from ledger.domain.access import IMPORT_SOURCE
from ledger.domain.errors import LedgerError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.domain.messages import field_of, readable
from ledger.settings import Settings
from ledger.storage.database import Database, DatabaseURLError
from ledger.worker import WorkerProcess, die_with_parent

if TYPE_CHECKING:
    from ledger.application import Ledger
    from ledger.bootstrap import Parts
    from ledger.readmodels.runner import ProjectionRunner

app = typer.Typer(
    help="Quality Ledger: an event-sourced, hash-chained audit ledger for manufacturing quality.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)
log = logging.getLogger("ledger.projections")
app.add_typer(cli_keys.app, name="keys")


def _database(settings: Settings) -> Database:
    try:
        return Database.from_url(settings.database_url)
    except DatabaseURLError as e:
        err.print(f"[red]LEDGER_DATABASE_URL: {e}[/red]")
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Apply pending migrations to LEDGER_DATABASE_URL."""
    from ledger.storage.migrate import migrate as apply

    applied = apply(_database(Settings()))
    typer.echo(
        f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else "")
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on [LEDGER_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on [LEDGER_PORT]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="server processes")] = 1,
) -> None:
    """Migrate, then serve the HTTP API on LEDGER_HOST:LEDGER_PORT."""
    from ledger import bootstrap
    from ledger.api import server

    settings = Settings()
    database = _database(settings)
    host, port = host or settings.host, port or settings.port
    config = server.server_config(settings, host=host, port=port, workers=workers)
    try:  # before a first key is made and shown: it would be no use on a port that is taken
        sock = server.bind(host, port)
    except OSError as e:
        err.print(f"[red]cannot listen on {host}:{port}: {e.strerror or e}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    with sock:
        try:
            # migrate and refuse an unsafe database before serving; make the checkpoint key
            bootstrap.open_ledger(settings).close()
            bootstrap.checkpoint_signer(settings)
        except Exception as e:
            err.print(f"[red]cannot start: {e}[/red]")
            raise typer.Exit(1) from None
        cli_keys.announce_first_key(settings)
        worker = None
        if settings.serve_projections and database.kind == "postgresql":  # ledger/worker.py
            worker = WorkerProcess()
            os.environ["LEDGER_SERVE_PROJECTIONS"] = "false"  # the servers wait for it
            worker.start()
        if not server.serve(config, sock, worker.stop if worker else lambda: None):
            raise typer.Exit(3)


class _BadLine(Exception):
    """A line of an import file that the ledger refuses."""


class _Importer:
    """Appends a JSONL file's envelopes in batches of `batch_size`, skipping what is stored."""

    def __init__(self, ledger: Ledger, source: str, batch_size: int, progress: Progress) -> None:
        self.ledger = ledger
        self.source = source
        self.batch_size = batch_size
        self.progress = progress
        self.task = progress.add_task("import", total=None)
        self.adapter: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)
        self.appended = self.seen = 0
        self.batch: list[EnvelopeBase] = []
        self.numbers: list[int] = []  # the file line of each envelope in `batch`

    def run(self, file: Path) -> str | None:
        """Append every valid line before the first invalid one; return why it stopped, if it
        did (a refused line raises _BadLine)."""
        with file.open("rb") as lines:
            total = sum(1 for line in lines if line.strip())
        self.progress.update(self.task, total=total)
        failed = None
        with file.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    self.batch.append(self.adapter.validate_json(line))
                    self.numbers.append(number)
                except ValidationError as e:
                    first = readable(e.errors())[0]
                    failed = f"line {number}: {field_of(first)}: {first['msg']}"
                    break
                self.seen += 1
                if len(self.batch) >= self.batch_size:
                    self.flush()
        self.flush()  # the last batch, or every valid line before the bad one
        return failed

    def _append(self, envelopes: list[EnvelopeBase]) -> None:
        result = self.ledger.append(envelopes, source=self.source, skip_stored=True)
        self.appended += result.appended
        self.progress.advance(self.task, len(envelopes))

    def flush(self) -> None:
        if not self.batch:
            return
        try:
            self._append(self.batch)
        except LedgerError:
            # The batch is refused whole: append its lines one by one to store those before the
            # bad one and to name the bad one's line.
            for envelope, number in zip(self.batch, self.numbers, strict=True):
                try:
                    self._append([envelope])
                except LedgerError as e:
                    raise _BadLine(f"line {number}: {e}") from None
        self.batch.clear()
        self.numbers.clear()


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSONL, one envelope per line")
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="events per transaction")] = 500,
    source: Annotated[
        str, typer.Option(help="the `source` stamped on imported events")
    ] = IMPORT_SOURCE,
) -> None:
    """Bulk-append envelopes from a JSONL file; re-running it appends nothing new."""
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with cli_keys.opened(Settings()) as parts:
        progress = Progress(*columns, console=err, transient=False)
        importer = _Importer(parts.ledger, source, batch_size, progress)
        try:
            with progress:
                failed = importer.run(file)
        except _BadLine as e:
            failed = str(e)
        except LedgerError as e:
            failed = f"near line {importer.seen}: {e}"
    _report_import(file, importer.seen, importer.appended, failed)


def _report_import(file: Path, seen: int, appended: int, failed: str | None) -> None:
    kept = seen - appended if failed is None else None
    if seen == 0 and failed is None:
        typer.echo(f"nothing to append: {file} holds no events")
    elif appended == 0 and failed is None:
        typer.echo(f"nothing to append: all {seen} events were already stored")
    else:
        typer.echo(
            f"appended {appended} event(s)" + (f"; {kept} were already stored" if kept else "")
        )
    if failed is not None:
        err.print(f"[red]stopped at {failed}[/red]; the events before it are stored")
        raise typer.Exit(1)


@app.command()
def demo() -> None:
    """Append the demo story (a disputed weld-crack complaint); running it again appends nothing."""
    from ledger.demo import run

    with cli_keys.opened(Settings()) as parts:
        try:
            run(parts.projections, parts.clock(), say=typer.echo)
        except LedgerError as e:
            err.print(
                f"[red]the demo cannot be told in this ledger: {e}[/red]\n"
                "Its streams (B-2026-0142, C-2026-0031, M-2026-0107, …) already hold other events: "
                "run it on a database of its own, e.g. LEDGER_DATABASE_URL=sqlite:///./var/demo.sqlite"
            )
            raise typer.Exit(1) from None


sla_app = typer.Typer(help="The SLA watcher.", no_args_is_help=True)
app.add_typer(sla_app, name="sla")


@sla_app.command("tick")
def sla_tick() -> None:
    """One pass of the SLA watcher: append the escalations that are due."""
    from ledger.watcher import tick

    with cli_keys.opened(Settings()) as parts:
        typer.echo(f"raised {tick(parts.projections, parts.clock())} escalation(s)")


replay_app = typer.Typer(help="Replay what the ledger knew at a past moment.", no_args_is_help=True)
app.add_typer(replay_app, name="replay")


@replay_app.command("complaint")
def replay_complaint(
    complaint_id: Annotated[str, typer.Argument(help="e.g. C-2026-0031")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="RFC 3339 time; only events recorded by then")
    ] = None,
) -> None:
    """Print the complaint's timeline and responsibility chain as of a time, as JSON."""
    import orjson
    from pydantic import TypeAdapter

    from ledger.domain.events import Timestamp
    from ledger.domain.time import parse_time
    from ledger.readmodels.responsibility.query import Responsibilities
    from ledger.readmodels.timeline.query import Timelines

    try:
        cut = parse_time(TypeAdapter(Timestamp).validate_python(as_of)) if as_of else None
    except ValidationError as e:
        err.print(f"[red]--as-of: {readable(e.errors())[0]['msg']}[/red]")
        raise typer.Exit(2) from None
    with cli_keys.opened(Settings()) as parts:
        try:
            chains = Responsibilities(parts.ledger, parts.clock())
            body = {
                "timeline": Timelines(parts.ledger).complaint_timeline(complaint_id, cut),
                "responsibility": chains.complaint_responsibility(complaint_id, cut),
            }
        except LedgerError as e:
            err.print(f"[red]{e}[/red]")
            raise typer.Exit(1) from None
    typer.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode())


projections_app = typer.Typer(help="Read models built from the events.", no_args_is_help=True)
app.add_typer(projections_app, name="projections")


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="one read model; all when omitted")] = None,
) -> None:
    """Rebuild read models from the first event, with a progress bar."""
    with cli_keys.opened(Settings()) as parts:
        runners = parts.projections.runners
        if name is not None and name not in runners:
            err.print(f"[red]no read model {name!r}; there are: {', '.join(runners)}[/red]")
            raise typer.Exit(2)
        chosen = {name: runners[name]} if name else runners
        _rebuild(chosen, parts.ledger.last_position)
        typer.echo(f"rebuilt {', '.join(chosen)} from {parts.ledger.last_position()} event(s)")


def _rebuild(chosen: dict[str, ProjectionRunner], last_position: Callable[[], int]) -> None:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=err) as progress:
        for each, runner in chosen.items():
            task = progress.add_task(each, total=last_position())

            def show(done: int, total: int, task: TaskID = task) -> None:
                progress.update(task, completed=done, total=total)

            count = runner.rebuild(progress=show)
            progress.update(task, completed=count, total=count)


# Between a worker's reports of where each read model stands (while one is behind).
REPORT_SECONDS = 5.0


class _Worker:
    """`ledger projections run`: the read models' catch-up as a process of its own. SIGINT and
    SIGTERM only set `stopping`; the main thread then stops the catch-ups, each after its page."""

    def __init__(
        self, parts: Parts, runners: dict[str, ProjectionRunner], stopping: threading.Event
    ) -> None:
        self.runners = runners
        self.ledger = parts.ledger
        self.stopping = stopping
        self.reported: dict[str, tuple[int, int]] = {}

    def follow(self, interval: float) -> None:
        names = ", ".join(self.runners)
        log.info("keeping %s caught up, looking for new events every %g s", names, interval)
        for runner in self.runners.values():
            runner.follow(interval)
        while not self.stopping.wait(REPORT_SECONDS):
            self.report()
        self.stop()

    def once(self) -> Exception | None:
        failed: list[Exception] = []

        def catch_up() -> None:
            try:
                for name, runner in self.runners.items():
                    began = time.perf_counter()
                    counted = runner.catch_up()
                    took = time.perf_counter() - began
                    log.info("%s counted %d event(s) in %.3f s", name, counted, took)
            except Exception as e:  # reported by the main thread
                failed.append(e)

        thread = threading.Thread(target=catch_up, name="catch-up", daemon=True)
        thread.start()
        began = time.monotonic()
        while thread.is_alive() and not self.stopping.wait(0.1):
            if time.monotonic() - began >= REPORT_SECONDS:
                self.report()
                began = time.monotonic()
        for runner in self.runners.values():
            runner.stop()
        thread.join()
        self.stop()
        return failed[0] if failed else None

    def stop(self) -> None:
        for runner in self.runners.values():
            runner.close()  # each background catch-up finishes its page
        self.report()
        log.info(
            "stopped: %s", ", ".join(f"{n} at position {p}" for n, (p, _) in self.reported.items())
        )

    def report(self) -> None:
        """Where each read model stands, when it moved since the last report."""
        last = self.ledger.last_position()
        for name, runner in self.runners.items():
            position = runner.position
            if self.reported.get(name) == (position, last):
                continue
            self.reported[name] = (position, last)
            if position >= last:
                log.info("%s caught up at position %d", name, position)
            else:
                rate = f", {runner.rate:,.0f} events/s" if runner.rate else ""
                log.info("%s at position %d, %d behind%s", name, position, last - position, rate)


@projections_app.command("run")
def projections_run(
    name: Annotated[str | None, typer.Argument(help="one read model; all when omitted")] = None,
    once: Annotated[bool, typer.Option("--once", help="catch up once, then exit")] = False,
) -> None:
    """Keep the read models caught up with the events until SIGINT or SIGTERM.

    Each stops after the page it is writing.

    For servers run with LEDGER_SERVE_PROJECTIONS=false (PostgreSQL: ledger serve runs one).
    """
    settings = Settings()
    stopping = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stopping.set())
    die_with_parent()  # when `ledger serve` runs it
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    with cli_keys.opened(settings) as parts:
        runners = parts.projections.runners
        if name is not None and name not in runners:
            err.print(f"[red]no read model {name!r}; there are: {', '.join(runners)}[/red]")
            raise typer.Exit(2)
        worker = _Worker(parts, {name: runners[name]} if name else runners, stopping)
        if not once:
            worker.follow(settings.projection_poll_seconds)
        elif (failed := worker.once()) is not None:
            err.print(f"[red]cannot catch up: {failed}[/red]")
            raise typer.Exit(1)


def main() -> None:
    """Entry point of the `ledger` script. A LEDGER_* variable the settings refuse is named,
    with why, not shown as a traceback."""
    try:
        app(prog_name="ledger")
    except ValidationError as e:
        if e.title != Settings.__name__:
            raise
        for error in e.errors():
            name = "LEDGER_" + "_".join(str(part) for part in error["loc"]).upper()
            err.print(f"[red]{name}: {error['msg']}[/red]", soft_wrap=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
