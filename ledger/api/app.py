"""`create_app(settings)`: the only place the HTTP application is built."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.routing import APIRoute

from ledger.api import problems
from ledger.api.deps import Principal
from ledger.api.limits import BodyLimit
from ledger.api.routes import events, health, streams, timelines
from ledger.application import Ledger
from ledger.settings import Settings

MAX_BODY_BYTES = 1024 * 1024


class _ORJSONRequest(Request):
    async def json(self) -> Any:
        # orjson refuses NaN/Infinity and nesting past its limit with a JSONDecodeError,
        # which FastAPI answers with 422 (the standard library would recurse and 500).
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class _Route(APIRoute):
    def get_route_handler(self) -> Any:
        handler = super().get_route_handler()

        async def route(request: Request) -> Any:
            return await handler(_ORJSONRequest(request.scope, request.receive))

        return route


def open_ledger(settings: Settings) -> Ledger:
    """Migrate the configured database, check it keeps what it commits, and open the ledger."""
    from ledger.storage.database import Database
    from ledger.storage.migrate import migrate

    database = Database.from_url(settings.database_url)
    migrate(database)
    ledger = Ledger(database, pool_size=settings.pool_size)
    ledger.store.check_durability()
    return ledger


def create_app(settings: Settings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    """Build the API; without a `ledger`, open the configured one at start-up."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ledger is None
        app.state.ledger = ledger or open_ledger(settings)
        try:
            yield
        finally:
            if owned:
                app.state.ledger.close()

    app = FastAPI(
        title="Quality Ledger",
        version="0.1.0",
        summary="An event-sourced, hash-chained audit ledger for manufacturing quality.",
        lifespan=lifespan,
    )
    app.router.route_class = _Route
    app.state.settings = settings
    app.state.principal_for = lambda request: Principal(name="local", role="admin")
    problems.install(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    for module in (events, streams, timelines, health):
        module.router.route_class = _Route
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (one per worker process)."""
    return create_app(Settings())
