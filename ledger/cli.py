"""The `ledger` command line (SPEC §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.api.problems import field_of
from ledger.domain.errors import LedgerError
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.settings import Settings
from ledger.storage.database import Database, DatabaseURLError

app = typer.Typer(
    help="Quality Ledger: an event-sourced, hash-chained audit ledger for manufacturing quality.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


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
    import uvicorn

    from ledger.api.app import open_ledger

    settings = Settings()
    _database(settings)
    try:
        open_ledger(settings).close()  # migrate and refuse an unsafe database before serving
    except Exception as e:
        err.print(f"[red]cannot start: {e}[/red]")
        raise typer.Exit(1) from None
    uvicorn.run(
        "ledger.api.app:app_from_env",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level="info",
    )


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="JSONL, one envelope per line")
    ],
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="events per transaction")] = 500,
    source: Annotated[str, typer.Option(help="the `source` stamped on imported events")] = "import",
) -> None:
    """Bulk-append envelopes from a JSONL file; re-running it appends nothing new."""
    from ledger.application import Ledger
    from ledger.storage.migrate import migrate as apply

    database = _database(Settings())
    apply(database)
    ledger = Ledger(database)
    adapter: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)
    total = sum(1 for line in file.open("rb") if line.strip())
    appended = seen = 0
    batch: list[EnvelopeBase] = []
    failed: str | None = None

    def flush() -> None:
        nonlocal appended
        if batch:
            appended += ledger.append(batch, source=source, skip_stored=True).appended
            progress.advance(task, len(batch))
            batch.clear()

    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, transient=False) as progress:
            task = progress.add_task("import", total=total)
            with file.open("rb") as lines:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    try:
                        batch.append(adapter.validate_json(line))
                    except ValidationError as e:
                        first = e.errors()[0]
                        failed = f"line {number}: {field_of(first)}: {first['msg']}"
                        break
                    seen += 1
                    if len(batch) >= batch_size:
                        flush()
            if failed is None:
                flush()
            else:
                flush()  # keep every valid line before the bad one
    except LedgerError as e:
        failed = f"near line {seen}: {e}"
    finally:
        ledger.close()
    kept = seen - appended if failed is None else None
    if appended == 0 and failed is None:
        typer.echo(f"nothing to append: all {seen} events were already stored")
    else:
        typer.echo(
            f"appended {appended} event(s)" + (f"; {kept} were already stored" if kept else "")
        )
    if failed is not None:
        err.print(f"[red]stopped at {failed}[/red]; the events before it are stored")
        raise typer.Exit(1)


def main() -> None:
    """Entry point of the `ledger` script."""
    app(prog_name="ledger")


if __name__ == "__main__":
    main()
