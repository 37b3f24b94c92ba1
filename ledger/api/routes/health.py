"""Liveness and metrics: no key needed."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.responses import Response

from ledger.api.deps import LedgerDep
from ledger.api.problems import documented
from ledger.api.responses import ORJSON
from ledger.api.routing import LedgerRoute

router = APIRouter(tags=["health"], route_class=LedgerRoute)


@router.get("/healthz", responses=documented(503))
def healthz(ledger: LedgerDep) -> Response:
    """200 while the server runs and reaches its database; 503 with Retry-After otherwise."""
    return ORJSON({"status": "ok", "position": ledger.last_position()})


@router.get("/metrics", response_class=Response)
def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
