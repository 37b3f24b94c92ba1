"""The RFC 9162 §2.1 Merkle tree over the whole ledger: one leaf per event, in position order.

Only the hashes of *perfect* subtrees are stored, each addressed by (level, index): node (L, i)
covers leaves [i·2^L, (i+1)·2^L), so level 0 holds the leaf hashes. A node is written once, when
its last leaf arrives, and never changes: appending a leaf writes it and the perfect nodes it
completes (the "compact range" merge of Trillian and Tessera), 2n − popcount(n) nodes in all.

Every subtree the RFC's recursion names, MTH(D[a:b]) with a a multiple of the smallest power of
two ≥ b − a, is the right-to-left fold of the perfect nodes of b − a's binary decomposition taken
from a: at most log2(n) stored nodes. The root of any size n up to the stored one is such a fold
(of [0, n)); an inclusion or a consistency proof lists at most log2(n) + 1 such subtrees, all
perfect but one or two, so it needs O(log n) stored nodes and never rehashes the ledger. Each is
planned first as the set of node keys it needs (one batch read for a database), then assembled
from them.

The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step. `check_inclusion` and
`check_consistency` raise ProofError naming the reason; `verify_inclusion` and
`verify_consistency` answer the same question with a bool and never raise for a bad proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the hash of one leaf (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


NodeKey = tuple[int, int]
"""(level, index): the perfect subtree covering leaves [index·2^level, (index+1)·2^level)."""


@dataclass(frozen=True, slots=True)
class Node:
    """A perfect subtree and its hash, as a store keeps it."""

    level: int
    index: int
    hash: bytes

    @property
    def key(self) -> NodeKey:
        return (self.level, self.index)


class NodeStore(Protocol):
    """Where the perfect nodes are kept. A key it does not hold raises KeyError."""

    def get(self, level: int, index: int) -> bytes: ...

    def get_many(self, keys: Collection[NodeKey]) -> Mapping[NodeKey, bytes]:
        """Every key asked for, in one round trip."""
        ...


class MemoryNodes:
    """A NodeStore in a dict, with the size of the tree it holds."""

    def __init__(self) -> None:
        self._nodes: dict[NodeKey, bytes] = {}
        self.size = 0

    def get(self, level: int, index: int) -> bytes:
        return self._nodes[(level, index)]

    def get_many(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        return {key: self._nodes[key] for key in keys}

    def __len__(self) -> int:
        return len(self._nodes)

    def append_leaves(self, leaf_hashes: Iterable[bytes]) -> list[Node]:
        """Append leaves (their hashes, not their data) and store what they complete."""
        keys = edge_keys(self.size)
        edge = [Node(level, index, self._nodes[(level, index)]) for level, index in keys]
        written = append(edge, leaf_hashes)
        self._nodes.update((node.key, node.hash) for node in written)
        self.size += sum(1 for node in written if node.level == 0)
        return written


def _split(size: int) -> int:
    """k of RFC 9162 §2.1.1: the largest power of two smaller than `size` (> 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def _check_subtree(start: int, end: int) -> None:
    size = end - start
    if start < 0 or size < 0 or (size == 0 and start != 0):
        raise ValueError(f"no subtree [{start}, {end})")
    if size and start % (1 << (size - 1).bit_length()):
        raise ValueError(f"[{start}, {end}) is not a subtree of the RFC 9162 recursion")


def subtree_keys(start: int, end: int) -> list[NodeKey]:
    """The perfect nodes whose right-to-left fold is MTH(D[start:end]), left to right.

    `start` must be a multiple of the smallest power of two ≥ end − start, as every subtree of
    the RFC's recursion is; [0, 0) is the empty tree, of no nodes.
    """
    _check_subtree(start, end)
    size, position, keys = end - start, start, []
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, position >> level))
            position += 1 << level
    return keys


def edge_keys(size: int) -> list[NodeKey]:
    """The right edge of a tree of `size` leaves: the perfect nodes of its decomposition."""
    return subtree_keys(0, size)


def subtree_hash(start: int, end: int, hashes: Mapping[NodeKey, bytes]) -> bytes:
    """MTH(D[start:end]) folded from the hashes of its perfect nodes (EMPTY_ROOT for [0, 0))."""
    keys = subtree_keys(start, end)
    if not keys:
        return EMPTY_ROOT
    result = hashes[keys[-1]]
    for key in reversed(keys[:-1]):
        result = node_hash(hashes[key], result)
    return result


@dataclass(frozen=True)
class Plan:
    """A root or a proof before it is read: the RFC subtrees [start, end) it lists, in order."""

    subtrees: tuple[tuple[int, int], ...]

    def keys(self) -> frozenset[NodeKey]:
        """Every perfect node the subtrees need: what to fetch, in one query."""
        return frozenset(key for start, end in self.subtrees for key in subtree_keys(start, end))

    def assemble(self, hashes: Mapping[NodeKey, bytes]) -> list[bytes]:
        """The subtrees' hashes from the fetched nodes (KeyError for one not fetched)."""
        return [subtree_hash(start, end, hashes) for start, end in self.subtrees]


def root_plan(size: int) -> Plan:
    """MTH(D[0:size]), a plan of one subtree."""
    if size < 0:
        raise ValueError(f"no tree of size {size}")
    return Plan(((0, size),))


def inclusion_plan(index: int, size: int) -> Plan:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1: the audit path, from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    path = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    return Plan(tuple(reversed(path)))


def consistency_plan(size1: int, size2: int) -> Plan:
    """PROOF(size1, D[0:size2]) of RFC 9162 §2.1.4.1 (empty when the sizes are equal)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof = []
    start, end, whole = 0, size2, True
    while end != size1:
        k = _split(end - start)
        if size1 - start <= k:
            proof.append((start + k, end))
            end = start + k
        else:
            proof.append((start, start + k))
            start += k
            whole = False
    if not whole:
        proof.append((start, end))
    return Plan(tuple(reversed(proof)))


def _edge_size(edge: Sequence[Node]) -> int:
    size = sum(1 << node.level for node in edge)
    if [node.key for node in edge] != edge_keys(size):
        raise ValueError("the nodes given are not the right edge of a tree")
    return size


def append(edge: Sequence[Node], leaf_hashes: Iterable[bytes]) -> list[Node]:
    """Every node to store when `leaf_hashes` follow the tree whose right edge is `edge`.

    `edge` holds the nodes of edge_keys(size), in that order, with their hashes. Each leaf is
    written at level 0 and merged with the edge's nodes of its level, as long as there is one:
    the new perfect nodes, each once, leaves before the nodes they complete.
    """
    stack = list(edge)
    size = _edge_size(stack)
    written: list[Node] = []
    for hash_ in leaf_hashes:
        if len(hash_) != HASH_SIZE:
            raise ValueError(f"a leaf hash has {HASH_SIZE} bytes, not {len(hash_)}")
        node = Node(0, size, hash_)
        written.append(node)
        while stack and stack[-1].level == node.level:
            left = stack.pop()
            node = Node(node.level + 1, node.index >> 1, node_hash(left.hash, node.hash))
            written.append(node)
        stack.append(node)
        size += 1
    return written


class Tree:
    """Roots and proofs of a stored tree, of its size or any size before it."""

    def __init__(self, nodes: NodeStore, size: int) -> None:
        self.nodes = nodes
        self.size = size

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]), the current size by default."""
        return self._read(root_plan(self._size(size)))[0]

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf `index` in the tree of `size` leaves."""
        return self._read(inclusion_plan(index, self._size(size)))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """The proof that the tree of `size1` leaves is a prefix of the one of `size2`."""
        return self._read(consistency_plan(size1, self._size(size2)))

    def _size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if size > self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {size}")
        return size

    def _read(self, plan: Plan) -> list[bytes]:
        return plan.assemble(self.nodes.get_many(plan.keys()))


class ProofError(ValueError):
    """A proof that does not prove what it claims; its message says why."""


def _check_hashes(proof: Sequence[bytes], *hashes: bytes) -> None:
    for hash_ in (*hashes, *proof):
        if len(hash_) != HASH_SIZE:
            raise ProofError(f"a hash of {len(hash_)} bytes, not {HASH_SIZE}")


def _shift_while_even(fn: int, sn: int) -> tuple[int, int]:
    """Right-shift fn and sn equally until LSB(fn) is set or fn is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def check_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless `proof` puts the leaf under `root`."""
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is not below tree size {tree_size}")
    _check_hashes(proof, leaf_hash)
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the leaf's path")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _shift_while_even(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the leaf's path")
    if r != root:
        raise ProofError("the proof leads to another root")


def _consistency_roots(
    first: int, second: int, first_hash: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Steps 1 to 6 of RFC 9162 §2.1.4.2 (0 < first < second): the roots fr and sr."""
    if not proof:
        raise ProofError("an empty proof between different sizes")
    path = [first_hash, *proof] if first & (first - 1) == 0 else list(proof)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the sizes call for")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _shift_while_even(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the sizes call for")
    return fr, sr


def check_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless the tree (size1, root1) is a prefix of
    (size2, root2).

    Outside the RFC's 0 < size1 < size2, as transparency-dev/merkle rules: equal sizes need an
    empty proof and equal roots; a proof from size 0 proves nothing and is refused.
    """
    if size2 < size1:
        raise ProofError(f"size1 {size1} is beyond size2 {size2}")
    if size1 <= 0:
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes with a non-empty proof")
        if root1 != root2:
            raise ProofError("equal sizes with different roots")
        return
    _check_hashes(proof)
    fr, sr = _consistency_roots(size1, size2, root1, proof)
    if fr != root1:
        raise ProofError("the proof does not lead to root1")
    if sr != root2:
        raise ProofError("the proof does not lead to root2")


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether check_inclusion accepts the proof."""
    try:
        check_inclusion(leaf_index, tree_size, leaf_hash, proof, root)
    except ProofError:
        return False
    return True


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether check_consistency accepts the proof."""
    try:
        check_consistency(size1, size2, root1, root2, proof)
    except ProofError:
        return False
    return True
