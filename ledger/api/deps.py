"""Dependencies shared by the routes, as `Annotated` aliases (who may call: `ledger.api.auth`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.application import Ledger
from ledger.readmodels.projections import Projections


# `async`, though they only read app state: FastAPI runs a sync dependency in the thread pool.
async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_projections(request: Request) -> Projections:
    projections: Projections = request.app.state.projections
    return projections


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
ProjectionsDep = Annotated[Projections, Depends(get_projections)]
