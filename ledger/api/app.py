"""`create_app(settings)`: the only place the HTTP application is built."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger import bootstrap
from ledger.api import openapi, problems
from ledger.api.auth import KeyCache
from ledger.api.limits import BodyLimit, RateLimit
from ledger.api.routes import digest, disputes, events, health, kpis, streams, timelines
from ledger.api.routing import LedgerRoute
from ledger.application import Ledger
from ledger.settings import Settings
from ledger.watcher import Watcher

MAX_BODY_BYTES = 1024 * 1024


def settle_memory() -> None:
    """Leave what start-up built (modules, schemas, the OpenAPI models) out of the garbage
    collector's full passes: a full pass then walks only what requests made, which cut the
    KPI read's p99 at 1,000,000 events by a fifth (docs/BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, *, ledger: Ledger | None = None) -> FastAPI:
    """Build the API; without a `ledger`, open the configured one at start-up (`bootstrap`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ledger is None
        parts = (
            bootstrap.build(settings) if ledger is None else bootstrap.assemble(ledger, settings)
        )
        app.state.ledger = parts.ledger
        app.state.keys = parts.keys
        app.state.projections = parts.projections
        # The served ledger's read models are kept caught up in the background, here or, with
        # LEDGER_SERVE_PROJECTIONS=false, by a worker process whose positions reads wait for
        # (`ledger serve` starts one beside its servers); it runs the SLA watcher. A ledger
        # handed in (tests) is driven by hand.
        if owned and settings.serve_projections:
            parts.projections.follow(settings.projection_poll_seconds)
        elif owned:
            parts.projections.watch()
        watcher = Watcher(parts.projections, settings.sla_tick_seconds) if owned else None
        if watcher is not None:
            watcher.start()
        if owned:
            settle_memory()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
                watcher.join(timeout=5)
            if owned:
                parts.close()
            else:  # the ledger stays open for whoever handed it in
                parts.projections.close()  # background catch-ups stop after their page

    app = FastAPI(
        title="Quality Ledger",
        version="0.1.0",
        summary="An event-sourced, hash-chained audit ledger for manufacturing quality.",
        lifespan=lifespan,
        # openapi.install serves pages that load nothing from the internet in their place.
        docs_url=None,
        redoc_url=None,
        # A redirect would build its Location from the Host header, unchecked, for anyone: the
        # API's paths have one spelling, and any other is a 404.
        redirect_slashes=False,
    )
    app.router.route_class = LedgerRoute
    app.state.settings = settings
    app.state.rate_limit = RateLimit.from_setting(settings.rate_limit)
    app.state.key_cache = KeyCache()
    problems.install(app)
    openapi.install(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    for module in (events, streams, timelines, disputes, kpis, digest, health):
        app.include_router(module.router)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (one per worker process)."""
    return create_app(Settings())
