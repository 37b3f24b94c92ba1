"""Reads of the ledger digest: the root of the tree counting the events up to a position, an
event's inclusion proof, and the consistency proof between two sizes (RFC 9162, section
2.1), from the stored nodes of the `merkle` read model."""

from __future__ import annotations

from typing import Any

from ledger.domain.errors import InvalidEventError
from ledger.domain.merkle import EMPTY_ROOT, Plan, consistency_plan, inclusion_plan, root_plan
from ledger.readmodels.digest.view import StoredNodes, tree_size
from ledger.readmodels.views import Views


def digest(views: Views, cut: int) -> dict[str, Any]:
    """The tree counting every event up to position `cut`: its size, its last leaf's position
    and its root (lower-case hex)."""
    with views.transaction(commit=False) as cursor:
        size, position = tree_size(views, cursor, cut)
        (root,) = _read(views, cursor, root_plan(size)) if size else (EMPTY_ROOT,)
    return {"tree_size": size, "position": position, "root": root.hex()}


def inclusion(views: Views, cut: int, position: int, size: int | None) -> dict[str, Any]:
    """The audit path of the event at `position` in the tree of `size` leaves (the tree up to
    `cut` when None)."""
    with views.transaction(commit=False) as cursor:
        total, _ = tree_size(views, cursor, cut)
        size = total if size is None else size
        index = _leaf_index(views, cursor, position)
        if not 0 < size <= total or index >= size:
            raise InvalidEventError(
                "tree_size", f"from {index + 1} to {total} for this event, not {size}"
            )
        leaf, root, *path = _read(
            views, cursor, Plan(((index, index + 1),)), root_plan(size), inclusion_plan(index, size)
        )
    return {
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": leaf.hex(),
        "audit_path": [h.hex() for h in path],
        "root": root.hex(),
    }


def consistency(views: Views, cut: int, from_size: int, to_size: int | None) -> dict[str, Any]:
    """The proof that the tree of `from_size` leaves is a prefix of the one of `to_size`."""
    with views.transaction(commit=False) as cursor:
        total, _ = tree_size(views, cursor, cut)
        to_size = total if to_size is None else to_size
        if not 0 < from_size <= to_size <= total:
            raise InvalidEventError("from_size", f"1 <= from_size <= to_size <= {total} must hold")
        from_root, to_root, *proof = _read(
            views, cursor, root_plan(from_size), root_plan(to_size),
            consistency_plan(from_size, to_size),
        )  # fmt: skip
    return {
        "from_size": from_size,
        "to_size": to_size,
        "from_root": from_root.hex(),
        "to_root": to_root.hex(),
        "proof": [h.hex() for h in proof],
    }


def _read(views: Views, cursor: Any, *plans: Plan) -> list[bytes]:
    """The hashes of every plan, in order, from one read of the nodes they need."""
    hashes = StoredNodes(views, cursor).get_many(frozenset().union(*(p.keys() for p in plans)))
    return [h for plan in plans for h in plan.assemble(hashes)]


def _leaf_index(views: Views, cursor: Any, position: int) -> int:
    cursor.execute(
        views.sql(f"SELECT idx FROM {views.table('rm_merkle_leaves')} WHERE position = ?"),
        [position],
    )
    row = cursor.fetchone()
    if row is None:  # an event appended after the cut
        raise InvalidEventError("event_id", f"the event at position {position} is not counted yet")
    return int(row["idx"])
