"""The ledger digest: the Merkle tree's root over every event, an event's inclusion proof, and
the consistency proof between two sizes (RFC 9162, section 2.1), for auditors."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel
from starlette.responses import Response

from ledger.api.auth import Verifier
from ledger.api.deps import ProjectionsDep, SignerDep
from ledger.api.problems import documented
from ledger.api.responses import ORJSON
from ledger.api.routing import LedgerRoute
from ledger.domain.checkpoint import Checkpoint, format_verifier_key, sign_note
from ledger.domain.errors import EventNotFoundError
from ledger.readmodels.digest import query
from ledger.readmodels.projections import Projections

router = APIRouter(prefix="/v1/digest", tags=["digest"], route_class=LedgerRoute)
Size = Annotated[int, Query(ge=1, le=2**63 - 1, description="a size of the tree (leaves)")]


class Digest(BaseModel):
    tree_size: int
    position: int
    root: str
    checkpoint: str


class DigestKey(BaseModel):
    origin: str
    key: str


class InclusionProof(BaseModel):
    event_id: str
    leaf_index: int
    tree_size: int
    leaf_hash: str
    audit_path: list[str]
    root: str


class ConsistencyProof(BaseModel):
    from_size: int
    to_size: int
    from_root: str
    to_root: str
    proof: list[str]


def _counted(projections: Projections) -> int:
    """The ledger's last position, once the tree counts every event up to it."""
    cut = projections.ledger.last_position()
    projections.wait_for(projections.digest, cut)
    return cut


@router.get("", response_model=Digest, responses=documented(400, 401, 403, 422, 429, 503))
def read_digest(projections: ProjectionsDep, signer: SignerDep, principal: Verifier) -> Response:
    """The root of the Merkle tree over every event (one leaf per event in position order,
    docs/CANONICAL.md): `tree_size` leaves, the last at `position`; `root` in lower-case hex;
    `checkpoint`, the same as a C2SP tlog-checkpoint signed note (Ed25519), which a verifier
    opens with the key of /v1/digest/key. Keep it: it proves what the ledger said."""
    body = query.digest(projections.views, _counted(projections))
    head = Checkpoint(signer.name, body["tree_size"], bytes.fromhex(body["root"]))
    return ORJSON({**body, "checkpoint": sign_note(head.body(), signer)})


@router.get("/key", response_model=DigestKey, responses=documented(400, 401, 403, 429))
def read_digest_key(signer: SignerDep, principal: Verifier) -> Response:
    """The checkpoints' origin and their verifier key, in the signed-note verifier-key form
    (`<name>+<key hash>+<base64 key>`), as Go's sumdb note package and witnesses take it."""
    return ORJSON({"origin": signer.name, "key": format_verifier_key(signer.verifier)})


@router.get(
    "/proof", response_model=InclusionProof, responses=documented(400, 401, 403, 404, 422, 429, 503)
)
def read_inclusion_proof(
    projections: ProjectionsDep,
    principal: Verifier,
    event_id: Annotated[UUID, Query(description="the event whose leaf is proven")],
    tree_size: Size | None = None,
) -> Response:
    """The audit path of the event's leaf in the tree of `tree_size` leaves (today's tree by
    default): with the leaf hash, it recomputes `root`."""
    cut = _counted(projections)
    found = projections.ledger.events_by_id([str(event_id)]).get(str(event_id))
    if found is None:
        raise EventNotFoundError(f"no event has event_id {event_id}")
    body = query.inclusion(projections.views, cut, found.position, tree_size)
    return ORJSON({"event_id": str(event_id), **body})


@router.get(
    "/consistency",
    response_model=ConsistencyProof,
    responses=documented(400, 401, 403, 422, 429, 503),
)
def read_consistency_proof(
    projections: ProjectionsDep,
    principal: Verifier,
    from_size: Size,
    to_size: Size | None = None,
) -> Response:
    """The proof that the tree of `from_size` leaves is a prefix of the tree of `to_size`
    (today's by default): nothing recorded before was changed, removed or reordered."""
    return ORJSON(query.consistency(projections.views, _counted(projections), from_size, to_size))
