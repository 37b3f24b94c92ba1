"""Dependencies shared by the routes, as `Annotated` aliases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from ledger.application import Ledger


def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


@dataclass(frozen=True)
class Principal:
    """Who is calling: the name becomes the event's `source`."""

    name: str
    role: str
    departments: frozenset[str] = frozenset()


def get_principal(request: Request) -> Principal:
    principal: Principal = request.app.state.principal_for(request)
    return principal


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
