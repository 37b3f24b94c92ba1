"""Dependencies shared by the routes, as `Annotated` aliases (who may call: `ledger.api.auth`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.api.auth import Principal, require
from ledger.application import Ledger
from ledger.domain.access import Permission
from ledger.readmodels.projections import Projections

__all__ = ["LedgerDep", "Principal", "PrincipalDep", "ProjectionsDep", "get_ledger"]


# `async`, though they only read app state: FastAPI runs a sync dependency in the thread pool.
async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_projections(request: Request) -> Projections:
    projections: Projections = request.app.state.projections
    return projections


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
ProjectionsDep = Annotated[Projections, Depends(get_projections)]
# Deny by default: a route still on this alias is admin-only until it declares its own
# permission with an alias from `ledger.api.auth` (tests/api/test_authorization.py insists).
PrincipalDep = Annotated[Principal, require(Permission.KEYS)]
