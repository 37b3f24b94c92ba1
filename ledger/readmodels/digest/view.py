"""The `merkle` read model (migration 0013): the ledger's Merkle tree, one leaf per event in
position order (`ledger.domain.leaf`), its perfect subtrees stored by (level, index).

A page adds its events' leaves: it reads the tree's size and right edge (at most log2 n nodes)
and writes the new nodes the compact-range merge makes (`merkle.append`), so its work does not
grow with the ledger. `DigestReads` answers roots and proofs at any size from the stored nodes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ledger.domain.leaf import event_leaf_hash
from ledger.domain.merkle import Node, NodeKey, append, edge_keys
from ledger.readmodels.facts import Fact
from ledger.readmodels.views import Views

NODE_COLUMNS = [("level", "smallint"), ("idx", "bigint"), ("hash", "bytea")]
LEAF_COLUMNS = [("idx", "bigint"), ("position", "bigint")]


class StoredNodes:
    """The stored nodes, as `merkle.Tree` asks for them: a batch in one query."""

    def __init__(self, views: Views, cursor: Any) -> None:
        self.views = views
        self.cursor = cursor

    def get(self, level: int, index: int) -> bytes:
        return self.get_many([(level, index)])[(level, index)]

    def get_many(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]:
        if not keys:
            return {}
        wanted = sorted(keys)
        where = " OR ".join(["(level = ? AND idx = ?)"] * len(wanted))
        self.cursor.execute(
            self.views.sql(
                f"SELECT level, idx, hash FROM {self.views.table('rm_merkle_nodes')} WHERE {where}"
            ),
            [v for key in wanted for v in key],
        )
        found = {(int(r["level"]), int(r["idx"])): bytes(r["hash"]) for r in self.cursor.fetchall()}
        missing = set(wanted) - set(found)
        if missing:
            raise KeyError(f"the stored tree lacks nodes {sorted(missing)[:5]}")
        return found


def tree_size(views: Views, cursor: Any, cut: int | None = None) -> tuple[int, int]:
    """(leaves, the position of the last) of the tree counting the events up to `cut` (all
    stored when None); (0, 0) for an empty tree."""
    table = views.table("rm_merkle_leaves")
    sql = f"SELECT idx, position FROM {table}"
    params: list[Any] = []
    if cut is not None:
        sql += " WHERE position <= ?"
        params.append(cut)
    cursor.execute(views.sql(sql + " ORDER BY idx DESC LIMIT 1"), params)
    row = cursor.fetchone()
    return (int(row["idx"]) + 1, int(row["position"])) if row else (0, 0)


@dataclass
class _Page:
    size: int
    edge: list[Node]


class MerkleTree:
    """Projector of `rm_merkle_nodes` and `rm_merkle_leaves`."""

    name = "merkle"

    def __init__(self, views: Views) -> None:
        self.views = views

    def forget(self) -> None:
        """Nothing is kept between pages: each reads the edge it starts from."""

    def reset(self, views: Views, cursor: Any) -> None:
        for table in ("rm_merkle_nodes", "rm_merkle_leaves"):
            cursor.execute(f"DELETE FROM {views.table(table)}")

    def gather(self, facts: list[Fact]) -> _Page:
        with self.views.transaction(commit=False) as cursor:
            size, _ = tree_size(self.views, cursor)
            keys = edge_keys(size)
            hashes = StoredNodes(self.views, cursor).get_many(keys)
        return _Page(size, [Node(level, index, hashes[(level, index)]) for level, index in keys])

    def apply(self, views: Views, cursor: Any, facts: list[Fact], page: _Page) -> None:
        leaves = [event_leaf_hash(f.position, f.recorded_at, f.record["hash"]) for f in facts]
        nodes = append(page.edge, leaves)
        views.insert_many(
            cursor, views.table("rm_merkle_nodes"), NODE_COLUMNS,
            [[n.level, n.index, n.hash] for n in nodes],
        )  # fmt: skip
        views.insert_many(
            cursor, views.table("rm_merkle_leaves"), LEAF_COLUMNS,
            [[page.size + i, f.position] for i, f in enumerate(facts)],
        )  # fmt: skip
