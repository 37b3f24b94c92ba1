"""`LedgerRoute`, the route class of every API router (`APIRouter(route_class=LedgerRoute)`).

It checks the caller's key before the request body is read, so an unauthorized caller cannot make
the server parse a megabyte, and it parses JSON with orjson: NaN and Infinity are refused, and so
is nesting deeper than `MAX_JSON_DEPTH`, all with 422 (the standard library would recurse into a
deep document and fail with 400 or worse).

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
from typing import Any, get_type_hints

import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ledger.api.auth import authorize_async, permission_of
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
    endpoint: Callable[..., Response],
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
        return await run_in_threadpool(
            endpoint, body=body, ledger=request.app.state.ledger, principal=request.state.principal
        )

    return handle


class LedgerRoute(APIRoute):
    """Authorizes first, then parses the body with orjson."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        permission = permission_of(self.dependant)
        short = (
            _direct_handler(self.endpoint)
            if getattr(self.endpoint, DIRECT, False) and permission is not None
            else None
        )

        async def route(request: Request) -> Any:
            if permission is not None:
                await authorize_async(request, permission)
            request = _ORJSONRequest(request.scope, request.receive)
            if short is not None:
                response = await short(request)
                if response is not None:
                    return response
            return await handler(request)

        return route
