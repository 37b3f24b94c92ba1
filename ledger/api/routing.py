"""`LedgerRoute`, the route class of every API router (`APIRouter(route_class=LedgerRoute)`).

It checks the caller's key before the request body is read, so an unauthorized caller cannot make
the server parse a megabyte, and it parses JSON with orjson: NaN and Infinity are refused, and so
is nesting deeper than `MAX_JSON_DEPTH`, all with 422 (the standard library would recurse into a
deep document and fail with 400 or worse).

It also refuses, with 422 naming it, a query parameter the route does not declare (FastAPI would
ignore it: `/v1/events?type=…` answered every event) and a single-valued one given twice (FastAPI
would keep the last), from the route's own declaration, so a new route is covered as it is written.

A route marked `@direct` (POST /v1/events) also gets a short way through for a well-formed body: the
route reads the JSON body, validates it against the endpoint's `body` annotation exactly as FastAPI
would (same parser, depth check and python-mode validation), and calls the endpoint with the app's
ledger and the authorized principal, skipping FastAPI's per-request dependency solving. A body
that is not JSON, is too deep or fails validation takes FastAPI's own path, so every error answer
(and the OpenAPI document, built from the unchanged signature) stays as it was.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, get_origin, get_type_hints

import orjson
from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ledger.api.auth import authorize, authorize_async, permission_of
from ledger.domain.access import Permission
from ledger.domain.events import MAX_JSON_DEPTH

DIRECT = "__ledger_direct__"


def nesting_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (the outermost is level 1)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class _ORJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            value = orjson.loads(body)
            if nesting_depth_exceeds(value, MAX_JSON_DEPTH):
                # FastAPI answers a JSONDecodeError with 422.
                raise json.JSONDecodeError(
                    f"JSON is nested deeper than {MAX_JSON_DEPTH} levels", "", 0
                )
            self._json = value
        return self._json


def direct(endpoint: Callable[..., Response]) -> Callable[..., Response]:
    """Mark a sync endpoint `(body, ledger, principal) -> Response` for `LedgerRoute`'s short way.

    Its `ledger` must be `LedgerDep` and its `principal` the route's permission alias: the short
    way passes `app.state.ledger` and the principal that `LedgerRoute` authorized.
    """
    setattr(endpoint, DIRECT, True)
    return endpoint


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return content_type.partition(";")[0].strip().lower() == "application/json"


def _direct_handler(
    endpoint: Callable[..., Response], permission: Permission
) -> Callable[[_ORJSONRequest], Awaitable[Response | None]]:
    adapter: TypeAdapter[Any] = TypeAdapter(get_type_hints(endpoint, include_extras=True)["body"])

    async def handle(request: _ORJSONRequest) -> Response | None:
        if not _is_json(request):
            return None
        try:
            value = await request.json()
        except (json.JSONDecodeError, orjson.JSONDecodeError):
            return None  # FastAPI answers it (the body is kept on the request)
        try:
            body = adapter.validate_python(value)
        except ValidationError:
            return None
        return await run_in_threadpool(call, request, body)

    def call(request: Request, body: Any) -> Response:
        # The key may have been let in from the key cache: look it up now, in this same hop to
        # the thread pool, so a key revoked by another process gets no answer from the route.
        principal = authorize(request, permission)
        return endpoint(body=body, ledger=request.app.state.ledger, principal=principal)

    return handle


def query_parameters(dependant: Dependant) -> tuple[frozenset[str], frozenset[str]]:
    """The names of the query parameters a route declares (its own and its dependencies'),
    and those of them that take a list."""
    names: set[str] = set()
    lists: set[str] = set()
    todo = [dependant]
    while todo:
        current = todo.pop()
        for field in current.query_params:
            names.add(field.alias)
            if get_origin(field.field_info.annotation) in (list, tuple, set, frozenset):
                lists.add(field.alias)
        todo.extend(current.dependencies)
    return frozenset(names), frozenset(lists)


def check_query(request: Request, names: frozenset[str], lists: frozenset[str]) -> None:
    """422 for a query parameter the route does not declare, or a single one given twice:
    FastAPI would silently ignore the first and keep the last of the second."""
    taken = ", ".join(sorted(names)) if names else "none"
    errors = []
    seen: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key not in names:
            message = f"is not a query parameter of this route (it takes: {taken})"
        elif key in seen and key not in lists:
            message = "is given more than once; give it once"
        else:
            seen.add(key)
            continue
        errors.append(
            {"type": "query_unknown", "loc": ("query", key), "msg": message, "input": value}
        )
    if errors:
        raise RequestValidationError(errors)


class LedgerRoute(APIRoute):
    """Authorizes first, refuses query parameters it does not declare, then parses the body
    with orjson."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        permission = permission_of(self.dependant)
        names, lists = query_parameters(self.dependant)
        short = (
            _direct_handler(self.endpoint, permission)
            if getattr(self.endpoint, DIRECT, False) and permission is not None
            else None
        )

        async def route(request: Request) -> Any:
            if permission is not None:
                await authorize_async(request, permission, before_body=short is not None)
            if request.scope.get("query_string"):
                check_query(request, names, lists)
            request = _ORJSONRequest(request.scope, request.receive)
            if short is not None and permission is not None:
                response = await short(request)
                if response is not None:
                    return response
                # FastAPI's way answers a malformed body before any dependency runs: look up a
                # key let in from the key cache first, so a revoked one gets its 401.
                await authorize_async(request, permission)
            return await handler(request)

        return route
