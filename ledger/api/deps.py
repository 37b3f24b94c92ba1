"""Dependencies shared by the routes, as `Annotated` aliases (who may call: `ledger.api.auth`)."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import Depends, Request

from ledger import bootstrap
from ledger.application import Ledger
from ledger.domain.checkpoint import Signer
from ledger.readmodels.projections import Projections

_signing = threading.Lock()


# `async`, though they only read app state: FastAPI runs a sync dependency in the thread pool.
async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_projections(request: Request) -> Projections:
    projections: Projections = request.app.state.projections
    return projections


def get_signer(request: Request) -> Signer:
    """The checkpoint signing key, read (or made) on first use: a server that is never asked
    for a checkpoint never touches the key file."""
    state = request.app.state
    with _signing:
        signer: Signer | None = getattr(state, "signer", None)
        if signer is None:
            signer = state.signer = bootstrap.checkpoint_signer(state.settings)
    return signer


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
SignerDep = Annotated[Signer, Depends(get_signer)]
ProjectionsDep = Annotated[Projections, Depends(get_projections)]
