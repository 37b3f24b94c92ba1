"""Who may do what: API keys, roles and the permission each route needs (SPEC §5).

Every route under `/v1` declares the one permission it needs by taking a principal parameter:

    from ledger.api.auth import SlaReader

    @router.get("/sla")
    def read_sla(ledger: LedgerDep, principal: SlaReader) -> Response:
        ...

or, for a permission without an alias below, `Annotated[Principal, require(Permission.X)]`
(`Permission` and the role table, `ROLE_PERMISSIONS`, are the domain's: `ledger.domain.access`).
The check runs before the request body is read and answers 401 (no, malformed, unknown or revoked
key, with `WWW-Authenticate: Bearer`), 403 (the key's role lacks the permission) or 429 (the key's
rate limit, with `Retry-After`); the route receives the caller's `Principal`, whose `name` is the
`source` of what it appends. Every request looks its key up in the database before the route acts,
so a key revoked by another process (`ledger keys revoke`) is refused from the next request on.
`tests/api/test_authorization.py` builds its matrix from `ROLE_PERMISSIONS` and the app's routes:
a new route is checked for every role as soon as it declares its permission, and a `/v1` route
that declares none fails there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ledger.domain.access import DEPARTMENT_BOUND_ROLES, ROLE_PERMISSIONS, Permission
from ledger.domain.errors import StreamRuleError
from ledger.domain.events import EnvelopeBase
from ledger.domain.stream import SYSTEM_ONLY_TYPES
from ledger.storage.keys import KeyStore, hash_key
from ledger.storage.rows import IndexRow


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name becomes the `source` of the events it appends."""

    name: str
    role: str
    departments: frozenset[str] = frozenset()
    # False when taken from the key cache for this request: not yet looked up in the database.
    confirmed: bool = field(default=True, compare=False)

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS.get(self.role, frozenset())


def _unauthorized(detail: str, *, invalid: bool = False) -> HTTPException:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def _forbidden(detail: str) -> HTTPException:
    return HTTPException(403, detail)


# How long a key that authenticated lets later requests read their body before their own
# lookup of the key (which every request makes before its route acts).
KEY_CACHE_SECONDS = 1.0
KEY_CACHE_SIZE = 1024


class KeyCache:
    """Keys that authenticated in the last `KEY_CACHE_SECONDS`, by the SHA-256 of the key.

    It only decides whether the route may read the request's body before the key is looked up:
    a known key's request goes on to the thread pool, where the key is looked up again in the
    same hop as the route's own work (`authorize`), so a revoked key never gets an answer from a
    route, and a known key's request makes one hop to the thread pool, not two. Only successes
    are kept (an unknown or revoked key is looked up before its body is read, every time).
    """

    def __init__(
        self,
        ttl: float = KEY_CACHE_SECONDS,
        size: int = KEY_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key: str) -> Principal | None:
        hashed = hash_key(key)
        entry = self._entries.get(hashed)
        if entry is None:
            return None
        if self.clock() >= entry[0]:
            self._entries.pop(hashed, None)
            return None
        return entry[1]

    def put(self, key: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[hash_key(key)] = (self.clock() + self.ttl, principal)

    def clear(self) -> None:
        self._entries.clear()


def key_store(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


def _bearer_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if not header:
        raise _unauthorized("send an API key as `Authorization: Bearer <key>`")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise _unauthorized("the Authorization header must read `Bearer <key>`", invalid=True)
    return key


def _key_cache(request: Request) -> KeyCache | None:
    cache: KeyCache | None = getattr(request.app.state, "key_cache", None)
    return cache


def authenticate(request: Request) -> Principal:
    """The caller of `Authorization: Bearer <key>`; 401 for a missing, unknown or revoked key."""
    key = _bearer_key(request)
    found = key_store(request).authenticate(key)
    if found is None:
        raise _unauthorized("the API key is malformed, unknown or revoked", invalid=True)
    principal = Principal(found.name, found.role, found.departments)
    cache = _key_cache(request)
    if cache is not None:
        cache.put(key, principal)
    return principal


def _admit(request: Request, principal: Principal) -> None:
    rate_limit = request.app.state.rate_limit
    if rate_limit is not None:
        rate_limit.hit(principal.name)
    request.state.principal = principal


def _permitted(principal: Principal, permission: Permission) -> Principal:
    if permission not in principal.permissions:
        raise _forbidden(f"the {principal.role} role may not {permission.value.replace('_', ' ')}")
    return principal


def authorize(request: Request, permission: Permission) -> Principal:
    """The caller, its key looked up in the database for this request, if its role has
    `permission`; counts the request once per key. Blocking: call it in the thread pool."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        principal = authenticate(request)
        _admit(request, principal)
    elif not principal.confirmed:
        principal = authenticate(request)
        request.state.principal = principal
    return _permitted(principal, permission)


async def authorize_async(
    request: Request, permission: Permission, *, before_body: bool = False
) -> Principal:
    """`authorize` from the event loop: in memory when this request's key is already looked
    up, otherwise the lookup runs in the thread pool.

    `before_body` (the check before the body is read): a key in the key cache is let in
    without a lookup, its principal unconfirmed; `authorize` must then run again before the
    route acts, in the route's own hop to the thread pool, as the `@direct` short way does
    (`Requirement` does it for every other route)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None and before_body:
        cache = _key_cache(request)
        cached = cache.get(_bearer_key(request)) if cache is not None else None
        if cached is not None:
            principal = replace(cached, confirmed=False)
            _admit(request, principal)
    if principal is None or not (principal.confirmed or before_body):
        return await run_in_threadpool(authorize, request, permission)
    return _permitted(principal, permission)


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key made by `ledger keys create`: `Authorization: Bearer ql_…`.",
)


class Requirement:
    """The dependency behind `require(permission)`; `LedgerRoute` finds it to check early."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(
        self,
        request: Request,
        # Declares the bearer scheme in OpenAPI; `authorize` reads the header itself.
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        # `LedgerRoute` has authorized the request already: then this is a check in memory,
        # done on the event loop, unless its key came from the key cache and is looked up now.
        return await authorize_async(request, self.permission)


def require(permission: Permission) -> Any:
    """The dependency of a route that needs `permission`: `Annotated[Principal, require(…)]`."""
    return Depends(Requirement(permission))


def permission_of(dependant: Dependant) -> Permission | None:
    """The permission a route declares through `require`, if any."""
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Requirement):
            return dependency.call.permission
        found = permission_of(dependency)
        if found is not None:
            return found
    return None


# What the departments' KPIs and incentives are judged by: only an admin key, or an integrator
# key bound to this department, appends these events or corrects them.
JUDGING_TYPES = frozenset({"policy.set", "target.set", "revenue.recorded"})
JUDGING_DEPARTMENT = "management"


@dataclass(frozen=True)
class CorrectedEvent:
    """What the rules of a correction need to know of the event it corrects."""

    type: str
    stream: tuple[str, str]
    department: str  # of its actor

    @classmethod
    def of_record(cls, record: Mapping[str, Any]) -> CorrectedEvent:
        stream = record["stream"]
        return cls(record["type"], (stream["type"], stream["id"]), record["actor"]["department"])


def corrected_events(
    envelopes: Sequence[EnvelopeBase], lookup: Callable[[list[str]], Sequence[IndexRow]]
) -> dict[str, CorrectedEvent]:
    """The events that the corrections among `envelopes` name, by event_id: from the request
    itself, else from the stored events (`lookup` is the ledger's `store.lookup`)."""
    wanted = {
        str(e.data.corrects_event_id)  # type: ignore[attr-defined]
        for e in envelopes
        if e.__dict__["type"] == "event.corrected"
    }
    if not wanted:
        return {}
    found = {
        str(e.event_id): CorrectedEvent.of_record(e.to_record(""))
        for e in envelopes
        if str(e.event_id) in wanted
    }
    missing = sorted(wanted - found.keys())
    if missing:
        for row in lookup(missing):
            found[row.event_id] = CorrectedEvent.of_record(row.record())
    return found


def _may_append_type(principal: Principal, event_type: str) -> str | None:
    """Why `principal` may not append events of `event_type` (None: it may)."""
    bound = principal.role in DEPARTMENT_BOUND_ROLES
    if event_type in SYSTEM_ONLY_TYPES and bound:
        return f"only the ledger appends {event_type}"
    management = bound and JUDGING_DEPARTMENT in principal.departments
    if event_type in JUDGING_TYPES and not (principal.role == "admin" or management):
        return (
            f"{event_type} is appended only with an admin key or an integrator key bound "
            f"to {JUDGING_DEPARTMENT}"
        )
    return None


def _check_correction(
    principal: Principal,
    envelope: EnvelopeBase,
    corrected: Mapping[str, CorrectedEvent],
    where: str,
) -> None:
    target = str(envelope.data.corrects_event_id)  # type: ignore[attr-defined]
    stream = (envelope.stream.type, envelope.stream.id)
    original = corrected.get(target)
    if original is None:
        # The stream would refuse it too; refused here, no later append of that event_id can
        # slip past the rules below.
        raise StreamRuleError(
            f"event.corrected names {target}, which is not an event of this stream"
        )
    if original.stream != stream or original.type == "event.corrected":
        return  # the stream refuses it (409), in its own words
    why = _may_append_type(principal, original.type)
    if why is not None:
        raise _forbidden(f"{where}: a correction counts as its event: {why}")
    if (
        principal.role in DEPARTMENT_BOUND_ROLES
        and original.department not in principal.departments
    ):
        mine = ", ".join(sorted(principal.departments)) or "none"
        raise _forbidden(
            f"{where}: this key corrects events of its own departments ({mine}), "
            f"not {original.department}'s {original.type}"
        )
    if envelope.actor.department != original.department:
        raise _forbidden(
            f"{where}: a correction's actor is of the corrected event's department "
            f"({original.department}), not {envelope.actor.department}"
        )


def check_append(
    principal: Principal,
    envelopes: Sequence[EnvelopeBase],
    corrected: Mapping[str, CorrectedEvent],
) -> None:
    """403 unless the caller may append every envelope (SPEC §5): integrators append only for
    their key's departments and never `escalation.raised`, which the ledger alone raises; only
    an admin key or an integrator key bound to management appends `JUDGING_TYPES`; a
    correction is appended only by a key that may append the corrected event, with an actor of
    the corrected event's actor's department. `corrected` is `corrected_events(envelopes, …)`.
    """
    for i, envelope in enumerate(envelopes):
        where = f"events[{i}]" if len(envelopes) > 1 else "the event"
        event_type = envelope.__dict__["type"]  # a field of every envelope model
        why = _may_append_type(principal, event_type)
        if why is not None:
            raise _forbidden(f"{where}: {why}")
        department = envelope.actor.department
        if principal.role in DEPARTMENT_BOUND_ROLES and department not in principal.departments:
            mine = ", ".join(sorted(principal.departments)) or "none"
            raise _forbidden(
                f"{where}: this key appends for its own departments ({mine}), not {department}"
            )
        if event_type == "event.corrected":
            _check_correction(principal, envelope, corrected, where)


Appender = Annotated[Principal, require(Permission.APPEND)]
EventReader = Annotated[Principal, require(Permission.READ_EVENTS)]
ProjectionReader = Annotated[Principal, require(Permission.READ_PROJECTIONS)]
SlaReader = Annotated[Principal, require(Permission.READ_SLA)]
KpiReader = Annotated[Principal, require(Permission.READ_KPIS)]
Verifier = Annotated[Principal, require(Permission.VERIFY)]
KeyAdmin = Annotated[Principal, require(Permission.KEYS)]
