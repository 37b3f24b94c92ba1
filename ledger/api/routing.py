"""`LedgerRoute`, the route class of every API router (`APIRouter(route_class=LedgerRoute)`).

It checks the caller's key before the request body is read, so an unauthorized caller cannot make
the server parse a megabyte, and it parses JSON with orjson: NaN and Infinity are refused, and so
is nesting deeper than `MAX_JSON_DEPTH`, all with 422 (the standard library would recurse into a
deep document and fail with 400 or worse).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from ledger.api.auth import authorize, permission_of
from ledger.domain.events import MAX_JSON_DEPTH


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


class LedgerRoute(APIRoute):
    """Authorizes first, then parses the body with orjson."""

    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()
        permission = permission_of(self.dependant)

        async def route(request: Request) -> Any:
            if permission is not None:
                await run_in_threadpool(authorize, request, permission)
            return await handler(_ORJSONRequest(request.scope, request.receive))

        return route
