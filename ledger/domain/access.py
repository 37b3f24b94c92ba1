"""Who writes to the ledger: the sources it stamps itself, the keys other parties use, and what
each key's role lets it do.

Every event carries a `source`: the name of the API key that appended it, or one of the names
below, which the ledger stamps on what it appends itself. Those names are reserved, so no key can
pass for the ledger (its events count at their `occurred_at`, as an admin's do).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum

from ledger.domain.events import DEPARTMENT_PATTERN

LEDGER_SOURCE = "ledger"  # the SLA watcher's escalations
DEMO_SOURCE = "demo"  # `ledger demo`
IMPORT_SOURCE = "import"  # `ledger import`, unless told another source
RESERVED_SOURCES = frozenset({LEDGER_SOURCE, DEMO_SOURCE, IMPORT_SOURCE})

ROLES = ("admin", "integrator", "director", "hr", "auditor")
# Roles whose key appends only events whose `actor.department` is among the key's departments.
DEPARTMENT_BOUND_ROLES = frozenset({"integrator"})
KEY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Permission(StrEnum):
    """What a route lets its caller do."""

    APPEND = "append"  # POST /v1/events
    READ_EVENTS = "read_events"  # GET /v1/events, /v1/streams/…
    READ_PROJECTIONS = "read_projections"  # timelines, responsibility chains
    READ_SLA = "read_sla"  # GET /v1/sla
    READ_KPIS = "read_kpis"  # GET /v1/kpis…
    VERIFY = "verify"  # GET /v1/verify, /v1/digest
    KEYS = "keys"  # managing keys


READS = frozenset(
    {Permission.READ_EVENTS, Permission.READ_PROJECTIONS, Permission.READ_SLA, Permission.READ_KPIS}
)

# The role table: what each role of `ROLES` may do.
ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "integrator": frozenset({Permission.APPEND, Permission.READ_EVENTS}),
    "director": READS,
    "hr": frozenset({Permission.READ_KPIS, Permission.READ_SLA}),
    "auditor": READS | {Permission.VERIFY},
}


class KeyRefusedError(ValueError):
    """A key that may not be made as asked; `field` names the refused part of it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_key(name: str, role: str, departments: Iterable[str]) -> None:
    """Refuse a key the ledger must never hold: an unknown role, a malformed or reserved name,
    departments on a role they do not bind, or departments that are not slugs."""
    if role not in ROLES:
        raise KeyRefusedError("role", f"one of {', '.join(ROLES)}, not {role!r}")
    if not re.fullmatch(KEY_NAME_PATTERN, name):
        raise KeyRefusedError(
            "name", "1-64 letters, digits, '.', '_' or '-'; starts with a letter or digit"
        )
    if name.lower() in RESERVED_SOURCES:
        reserved = ", ".join(sorted(RESERVED_SOURCES))
        raise KeyRefusedError(
            "name", f"{name!r} is reserved: the ledger stamps {reserved} on its own events"
        )
    wanted = sorted(departments)
    bound = " or ".join(sorted(DEPARTMENT_BOUND_ROLES))
    if role not in DEPARTMENT_BOUND_ROLES:
        if wanted:
            raise KeyRefusedError(
                "departments", f"apply to {bound} keys only; a {role} key has no departments"
            )
        return
    if not wanted:
        raise KeyRefusedError("departments", f"an {role} key needs the departments it appends for")
    for department in wanted:
        if not re.fullmatch(DEPARTMENT_PATTERN, department):
            raise KeyRefusedError(
                "departments", f"{department!r} is not a department slug like production"
            )
