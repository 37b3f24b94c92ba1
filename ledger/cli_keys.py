"""`ledger keys …`: make, list and revoke API keys."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from ledger.domain.access import ROLES, KeyRefusedError, check_key
from ledger.domain.time import Clock, format_time
from ledger.settings import Settings
from ledger.storage.database import DatabaseURLError, DurabilityError
from ledger.storage.keys import KeyNameTakenError, KeyStore

if TYPE_CHECKING:
    from ledger.bootstrap import Parts

app = typer.Typer(
    help="Manage API keys. Only a hash of each key is stored: a key is shown once, when made.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


@contextmanager
def opened(settings: Settings, *, pool_size: int | None = None) -> Iterator[Parts]:
    """The ledger's parts for one command, from the composition root, closed afterwards: a
    malformed LEDGER_DATABASE_URL exits 2, a database that would lose commits exits 1."""
    from ledger import bootstrap

    try:
        parts = bootstrap.build(settings, pool_size=pool_size)
    except DatabaseURLError as e:
        err.print(f"[red]LEDGER_DATABASE_URL: {e}[/red]")
        raise typer.Exit(2) from None
    except DurabilityError as e:
        err.print(f"[red]cannot open the ledger: {e}[/red]")
        raise typer.Exit(1) from None
    try:
        yield parts
    finally:
        parts.close()


@contextmanager
def _key_store(settings: Settings) -> Iterator[tuple[KeyStore, Clock]]:
    with opened(settings, pool_size=1) as parts:
        yield parts.keys, parts.clock


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{message}[/red]")
    return typer.Exit(code)


@app.command()
def create(
    role: Annotated[str, typer.Option(help=f"one of: {', '.join(ROLES)}")],
    name: Annotated[
        str,
        typer.Option(
            help="stamped as `source` on the events the key appends; "
            "ledger, demo and import are reserved"
        ),
    ],
    departments: Annotated[
        str,
        typer.Option(
            help="comma-separated department slugs an integrator appends for (integrator keys only)"
        ),
    ] = "",
) -> None:
    """Make a key; it is printed alone on the last line of stdout, and never again."""
    wanted = frozenset(d.strip() for d in departments.split(",") if d.strip())
    try:
        check_key(name, role, wanted)
    except KeyRefusedError as e:
        raise _fail(f"--{e.field}: {e.message}") from None
    with _key_store(Settings()) as (keys, now):
        try:
            key, made = keys.create(name, role, wanted, now())
        except KeyNameTakenError:
            raise _fail(
                f"a key named {name!r} exists; names are never reused, even after revocation, "
                "because they stay the source of the events appended with them"
            ) from None
    scope = f"; departments: {', '.join(sorted(made.departments))}" if made.departments else ""
    err.print(f"made the {role} key {name!r}{scope}. Keep it now: it is not shown again.")
    typer.echo(key)


@app.command("list")
def list_() -> None:
    """Every key's name, role, departments, public id and state; never a key or its hash."""
    with _key_store(Settings()) as (keys, _):
        rows = keys.list()
    typer.echo(f"{'NAME':<24} {'ROLE':<11} {'DEPARTMENTS':<24} {'KEY ID':<13} STATE")
    for k in rows:
        state = (
            f"revoked {format_time(k.revoked_at)}"
            if k.revoked_at
            else f"active since {format_time(k.created_at)}"
        )
        departments = ",".join(sorted(k.departments)) or "-"
        typer.echo(f"{k.name:<24} {k.role:<11} {departments:<24} {k.key_id:<13} {state}")


@app.command()
def revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key at once; its name stays taken."""
    with _key_store(Settings()) as (keys, now):
        if not keys.revoke(name, now()):
            raise _fail(f"no active key is named {name!r}", code=1)
    typer.echo(f"revoked the key {name!r}")


def announce_first_key(settings: Settings) -> None:
    """On an empty key table, make an `admin` key named `admin` and print it, once."""
    with _key_store(settings) as (keys, now):
        if not keys.is_empty():
            return
        try:
            key, _ = keys.create("admin", "admin", frozenset(), now())
        except KeyNameTakenError:
            return  # another `ledger serve` made it a moment ago and printed it
    typer.echo(
        "No API key existed, so an admin key named 'admin' was made. It is shown only this once;\n"
        "make other keys with `ledger keys create`. The admin key:"
    )
    typer.echo(key)
    sys.stdout.flush()  # now, not when the server stops: stdout may be a pipe to a log
