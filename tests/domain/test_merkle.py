"""The ledger's Merkle tree against RFC 9162 §2.1: transparency-dev's vectors, and the RFC's
recursive definitions written here again without the ledger's code."""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import subprocess
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.merkle import (
    EMPTY_ROOT,
    MemoryNodes,
    Node,
    NodeKey,
    ProofError,
    Tree,
    append,
    check_consistency,
    check_inclusion,
    consistency_plan,
    edge_keys,
    inclusion_plan,
    leaf_hash,
    node_hash,
    root_plan,
    subtree_keys,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "fixtures" / "rfc9162"

# --- RFC 9162 §2.1, recursively, over the list of entries -----------------------------------


def rfc_leaf(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def rfc_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_split(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class Reference:
    """MTH, PATH and PROOF of RFC 9162 §2.1 over D[0:n], as the RFC defines them."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = entries
        self._mth: dict[tuple[int, int], bytes] = {}

    def mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) (memoized: the proofs below ask for the same subtrees again)."""
        if (start, end) not in self._mth:
            n = end - start
            if n == 0:
                value = hashlib.sha256(b"").digest()
            elif n == 1:
                value = rfc_leaf(self.entries[start])
            else:
                k = rfc_split(n)
                value = rfc_node(self.mth(start, start + k), self.mth(start + k, end))
            self._mth[start, end] = value
        return self._mth[start, end]

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """PATH(m, D[start:end]) of §2.1.3.1."""
        n = end - start
        if n == 1:
            return []
        k = rfc_split(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[0:n]) of §2.1.4.1."""
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [self.mth(start, end)]
        k = rfc_split(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, whole), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]


def path_sides(m: int, n: int) -> list[bool]:
    """For each element of PATH(m, D[0:n]), from the leaf up: whether it is a left sibling."""
    if n == 1:
        return []
    k = rfc_split(n)
    return [*path_sides(m, k), False] if m < k else [*path_sides(m - k, n - k), True]


def root_from_path(m: int, n: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root PATH's recursion rebuilds from leaf m of D[0:n], or None if it has another shape."""
    if n == 1:
        return None if path else leaf
    if not path:
        return None
    k, rest, sibling = rfc_split(n), path[:-1], path[-1]
    if m < k:
        left = root_from_path(m, k, leaf, rest)
        return None if left is None else rfc_node(left, sibling)
    right = root_from_path(m - k, n - k, leaf, rest)
    return None if right is None else rfc_node(sibling, right)


def roots_from_subproof(
    m: int, n: int, whole: bool, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes] | None:
    """MTH of D[0:m] within D[0:n], and of D[0:n], that SUBPROOF(m, D[0:n], whole) rebuilds."""
    if m == n:
        if whole:
            return None if proof else (old_root, old_root)
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k, rest, sibling = rfc_split(n), proof[:-1], proof[-1]
    if m <= k:
        inner = roots_from_subproof(m, k, whole, old_root, rest)
        return None if inner is None else (inner[0], rfc_node(inner[1], sibling))
    inner = roots_from_subproof(m - k, n - k, False, old_root, rest)
    return None if inner is None else (rfc_node(sibling, inner[0]), rfc_node(sibling, inner[1]))


def all_hashes(*hashes: bytes) -> bool:
    return all(len(h) == 32 for h in hashes)


def rfc_verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    if not 0 <= index < size or not all_hashes(leaf, *path):
        return False
    return root_from_path(index, size, leaf, path) == root


def rfc_verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> bool:
    if not 0 < size1 <= size2 or not all_hashes(*proof):
        return False
    if size1 == size2:
        return not proof and root1 == root2
    return roots_from_subproof(size1, size2, True, root1, proof) == (root1, root2)


# --- transparency-dev's vectors ------------------------------------------------------------


def vector_files(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def load(path: Path) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads(path.read_text())
    for field in ("root", "leafHash", "root1", "root2"):
        if field in vector:
            vector[field] = base64.b64decode(vector[field])
    vector["proof"] = [base64.b64decode(h) for h in vector["proof"] or []]
    return vector


def vector_id(path: Path) -> str:
    return str(path.relative_to(VECTORS))


def test_all_196_vectors_are_there() -> None:
    assert len(vector_files("inclusion")) + len(vector_files("consistency")) == 196


@pytest.mark.parametrize("path", vector_files("inclusion"), ids=vector_id)
def test_an_inclusion_vector_is_accepted_exactly_when_it_should_be(path: Path) -> None:
    v = load(path)
    args = (v["leafIdx"], v["treeSize"], v["leafHash"], v["proof"], v["root"])
    assert verify_inclusion(*args) is not v["wantErr"], v["desc"]
    assert rfc_verify_inclusion(*args) is not v["wantErr"], v["desc"]


@pytest.mark.parametrize("path", vector_files("consistency"), ids=vector_id)
def test_a_consistency_vector_is_accepted_exactly_when_it_should_be(path: Path) -> None:
    v = load(path)
    args = (v["size1"], v["size2"], v["root1"], v["root2"], v["proof"])
    assert verify_consistency(*args) is not v["wantErr"], v["desc"]
    assert rfc_verify_consistency(*args) is not v["wantErr"], v["desc"]


# --- the stored tree against the recursive definitions -------------------------------------


@st.composite
def ledgers(draw: st.DrawFn, max_size: int = 300) -> tuple[list[bytes], list[int]]:
    """Distinct entries, and the sizes after each batch they are appended in (0 first)."""
    size = draw(st.integers(1, max_size))
    salt = draw(st.binary(max_size=8))
    entries = [salt + i.to_bytes(4, "big") for i in range(size)]
    cuts = draw(st.sets(st.integers(1, size - 1), max_size=12)) if size > 1 else set()
    return entries, [0, *sorted(cuts), size]


def stored(entries: Sequence[bytes], sizes: Sequence[int]) -> MemoryNodes:
    nodes = MemoryNodes()
    for before, after in itertools.pairwise(sizes):
        nodes.append_leaves(rfc_leaf(entry) for entry in entries[before:after])
    return nodes


def key_bound(size: int) -> int:
    return 2 * max(1, (size - 1).bit_length())


@settings(deadline=None)
@given(ledgers())
def test_roots_of_every_size_are_the_rfc_tree_hash(ledger: tuple[list[bytes], list[int]]) -> None:
    entries, sizes = ledger
    nodes, reference = MemoryNodes(), Reference(entries)
    for before, after in itertools.pairwise(sizes):
        written = nodes.append_leaves(rfc_leaf(entry) for entry in entries[before:after])
        assert [n.index for n in written if n.level == 0] == list(range(before, after))
        assert len(nodes) == 2 * after - after.bit_count()
        assert Tree(nodes, after).root() == reference.mth(0, after)
    tree = Tree(nodes, nodes.size)
    for size in range(len(entries) + 1):
        assert tree.root(size) == reference.mth(0, size)
        assert len(root_plan(size).keys()) == size.bit_count()


@settings(deadline=None)
@given(ledgers())
def test_every_inclusion_proof_is_the_rfc_path_and_verifies_both_ways(
    ledger: tuple[list[bytes], list[int]],
) -> None:
    entries, sizes = ledger
    reference, tree = Reference(entries), Tree(stored(entries, sizes), len(entries))
    for size in sizes[1:]:
        root = reference.mth(0, size)
        for m in range(size) if size == len(entries) else (0, size // 2, size - 1):
            proof = tree.inclusion_proof(m, size)
            assert proof == reference.path(m, 0, size)
            assert len(inclusion_plan(m, size).keys()) <= key_bound(size)
            assert verify_inclusion(m, size, rfc_leaf(entries[m]), proof, root)
            assert rfc_verify_inclusion(m, size, rfc_leaf(entries[m]), proof, root)


@settings(deadline=None)
@given(ledgers())
def test_every_consistency_proof_is_the_rfc_proof_and_verifies_both_ways(
    ledger: tuple[list[bytes], list[int]],
) -> None:
    entries, sizes = ledger
    reference, tree = Reference(entries), Tree(stored(entries, sizes), len(entries))
    n = len(entries)
    pairs = {(m, n) for m in range(1, n + 1)} | {(a, b) for a in sizes[1:] for b in sizes if a <= b}
    for m, size in sorted(pairs):
        proof = tree.consistency_proof(m, size)
        assert proof == reference.proof(m, size)
        assert len(consistency_plan(m, size).keys()) <= key_bound(size)
        roots = (reference.mth(0, m), reference.mth(0, size))
        assert verify_consistency(m, size, *roots, proof)
        assert rfc_verify_consistency(m, size, *roots, proof)


# --- what a verifier must refuse -----------------------------------------------------------


def flipped(proof: list[bytes], data: st.DataObject) -> list[bytes]:
    i = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    changed = bytearray(proof[i])
    changed[byte] ^= 1 << bit
    return [*proof[:i], bytes(changed), *proof[i + 1 :]]


def mutations(proof: list[bytes], data: st.DataObject) -> list[list[bytes]]:
    """The proof with one byte flipped, one element dropped, one added: each must fail."""
    copies = [st.sampled_from(proof)] if proof else []
    added = data.draw(st.one_of(st.binary(min_size=32, max_size=32), *copies), label="added")
    at = data.draw(st.integers(0, len(proof)), label="position")
    wrong = [[*proof[:at], added, *proof[at:]]]
    if proof:
        dropped = data.draw(st.integers(0, len(proof) - 1), label="dropped")
        wrong += [flipped(proof, data), [*proof[:dropped], *proof[dropped + 1 :]]]
    return wrong


@settings(deadline=None)
@given(ledgers(max_size=100), st.data())
def test_a_changed_inclusion_proof_leaf_index_size_or_root_is_refused(
    ledger: tuple[list[bytes], list[int]], data: st.DataObject
) -> None:
    entries, sizes = ledger
    tree = Tree(stored(entries, sizes), len(entries))
    size = data.draw(st.integers(1, len(entries)), label="size")
    m = data.draw(st.integers(0, size - 1), label="index")
    proof, root, leaf = tree.inclusion_proof(m, size), tree.root(size), rfc_leaf(entries[m])
    both = (verify_inclusion, rfc_verify_inclusion)
    for wrong in mutations(proof, data):
        assert not any(verify(m, size, leaf, wrong, root) for verify in both)
    for other in (m - 1, m + 1, size, -1, data.draw(st.integers(0, size - 1), label="other")):
        if other != m:
            assert not any(verify(other, size, leaf, proof, root) for verify in both)
    # Another size verifies only where the leaf's path has the same shape: the proof binds the
    # root, and a tree head binds its size.
    other_size = data.draw(st.integers(m + 1, 2 * size + 2), label="other size")
    same_shape = path_sides(m, other_size) == path_sides(m, size)
    assert verify_inclusion(m, other_size, leaf, proof, root) is same_shape
    assert rfc_verify_inclusion(m, other_size, leaf, proof, root) is same_shape
    assert not any(verify(m, size, leaf, proof, rfc_leaf(b"other")) for verify in both)
    assert not any(verify(m, size, rfc_leaf(b"other"), proof, root) for verify in both)


@settings(deadline=None)
@given(ledgers(max_size=100), st.data())
def test_a_changed_consistency_proof_or_root_is_refused(
    ledger: tuple[list[bytes], list[int]], data: st.DataObject
) -> None:
    entries, sizes = ledger
    tree = Tree(stored(entries, sizes), len(entries))
    size2 = data.draw(st.integers(1, len(entries)), label="size2")
    size1 = data.draw(st.integers(1, size2), label="size1")
    proof = tree.consistency_proof(size1, size2)
    root1, root2 = tree.root(size1), tree.root(size2)
    both = (verify_consistency, rfc_verify_consistency)
    for wrong in mutations(proof, data):
        assert not any(verify(size1, size2, root1, root2, wrong) for verify in both)
    other = rfc_leaf(b"other")
    for roots in ((other, root2), (root1, other), (root2, root1)):
        if roots != (root1, root2):
            assert not any(verify(size1, size2, *roots, proof) for verify in both)
    assert not any(verify(0, size2, EMPTY_ROOT, root2, proof) for verify in both)
    if size1 < size2:
        assert not any(verify(size2, size1, root2, root1, proof) for verify in both)
    # Other sizes: both verifiers agree, and refuse a proof of another length than theirs.
    o1 = data.draw(st.integers(1, len(entries) + 2), label="other size1")
    o2 = data.draw(st.integers(o1, len(entries) + 2), label="other size2")
    verdict = verify_consistency(o1, o2, root1, root2, proof)
    assert verdict is rfc_verify_consistency(o1, o2, root1, root2, proof)
    if len(Reference([b""] * o2).proof(o1, o2)) != len(proof):
        assert not verdict


def test_check_says_why_a_proof_fails() -> None:
    nodes = MemoryNodes()
    nodes.append_leaves(rfc_leaf(bytes([i])) for i in range(5))
    tree = Tree(nodes, 5)
    leaf, proof, root = rfc_leaf(b"\x03"), tree.inclusion_proof(3), tree.root()
    check_inclusion(3, 5, leaf, proof, root)
    with pytest.raises(ProofError, match="not below"):
        check_inclusion(5, 5, leaf, proof, root)
    with pytest.raises(ProofError, match="32"):
        check_inclusion(3, 5, leaf[:-1], proof, root)
    with pytest.raises(ProofError, match="longer"):
        check_inclusion(3, 5, leaf, [*proof, root], root)
    with pytest.raises(ProofError, match="shorter"):
        check_inclusion(3, 5, leaf, proof[:-1], root)
    with pytest.raises(ProofError, match="another root"):
        check_inclusion(3, 5, leaf, proof, leaf)
    proof, root3 = tree.consistency_proof(3), tree.root(3)
    check_consistency(3, 5, root3, root, proof)
    with pytest.raises(ProofError, match="beyond"):
        check_consistency(5, 3, root, root3, proof)
    with pytest.raises(ProofError, match="empty tree"):
        check_consistency(0, 5, EMPTY_ROOT, root, proof)
    with pytest.raises(ProofError, match="non-empty"):
        check_consistency(5, 5, root, root, proof)
    with pytest.raises(ProofError, match="different roots"):
        check_consistency(5, 5, root, root3, [])
    with pytest.raises(ProofError, match="empty proof"):
        check_consistency(3, 5, root3, root, [])
    with pytest.raises(ProofError, match="longer"):
        check_consistency(3, 5, root3, root, [*proof, root])
    with pytest.raises(ProofError, match="shorter"):
        check_consistency(3, 5, root3, root, proof[:-1])
    with pytest.raises(ProofError, match="root1"):
        check_consistency(3, 5, root, root, proof)
    with pytest.raises(ProofError, match="root2"):
        check_consistency(3, 5, root3, root3, proof)


# --- the store: what append writes, what a proof reads -------------------------------------


def test_the_hashes_are_those_of_rfc_9162() -> None:
    assert leaf_hash(b"entry") == rfc_leaf(b"entry")
    assert node_hash(b"l" * 32, b"r" * 32) == rfc_node(b"l" * 32, b"r" * 32)
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert Tree(MemoryNodes(), 0).root() == EMPTY_ROOT


def test_append_writes_each_leaf_then_the_perfect_nodes_it_completes() -> None:
    leaves = [rfc_leaf(bytes([i])) for i in range(4)]
    written = append([], leaves[:3])
    assert [(n.level, n.index) for n in written] == [(0, 0), (0, 1), (1, 0), (0, 2)]
    edge = [n for n in written if (n.level, n.index) in edge_keys(3)]
    assert [(n.level, n.index) for n in edge] == [(1, 0), (0, 2)]
    more = append(edge, leaves[3:])
    assert [(n.level, n.index) for n in more] == [(0, 3), (1, 1), (2, 0)]
    assert more[-1].hash == Reference([bytes([i]) for i in range(4)]).mth(0, 4)


def test_append_refuses_an_edge_that_is_not_one_and_a_leaf_that_is_not_a_hash() -> None:
    leaf = rfc_leaf(b"x")
    with pytest.raises(ValueError, match="right edge"):
        append([Node(0, 0, leaf), Node(1, 0, leaf)], [leaf])
    with pytest.raises(ValueError, match="right edge"):
        append([Node(0, 1, leaf)], [leaf])
    with pytest.raises(ValueError, match="32 bytes"):
        append([], [b"event data"])


def test_a_subtree_is_the_perfect_nodes_of_its_size_in_binary_from_its_start() -> None:
    assert edge_keys(13) == subtree_keys(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert subtree_keys(8, 13) == [(2, 2), (0, 12)]
    assert subtree_keys(12, 16) == [(2, 3)]
    assert subtree_keys(0, 0) == []
    for start, end in ((4, 9), (2, 5), (1, 3), (3, 3), (5, 4), (-1, 0)):
        with pytest.raises(ValueError):
            subtree_keys(start, end)


def test_plans_refuse_what_the_rfc_does_not_define() -> None:
    tree = Tree(stored([b"a", b"b", b"c"], [0, 3]), 3)
    for call in (
        lambda: tree.root(4),
        lambda: tree.inclusion_proof(3),
        lambda: tree.inclusion_proof(0, 0),
        lambda: tree.consistency_proof(0),
        lambda: tree.consistency_proof(3, 2),
        lambda: root_plan(-1),
    ):
        with pytest.raises(ValueError):
            call()
    assert tree.consistency_proof(3) == []


class UniformNodes:
    """The perfect nodes of `size` equal leaves: a level's nodes share one hash, so a tree of any
    size is at hand without storing it. It counts what is read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.levels = [rfc_leaf(b"event")]
        for _ in range(size.bit_length()):
            self.levels.append(rfc_node(self.levels[-1], self.levels[-1]))
        self.reads: list[int] = []

    def get(self, level: int, index: int) -> bytes:
        if (index + 1) << level > self.size:
            raise KeyError((level, index))
        return self.levels[level]

    def get_many(self, keys: Collection[NodeKey]) -> dict[NodeKey, bytes]:
        self.reads.append(len(keys))
        return {(level, index): self.get(level, index) for level, index in keys}


@functools.cache
def uniform_root(size: int) -> bytes:
    """MTH of `size` equal leaves, by the RFC's recursion (it depends on the size alone)."""
    if size == 1:
        return rfc_leaf(b"event")
    k = rfc_split(size)
    return rfc_node(uniform_root(k), uniform_root(size - k))


@pytest.mark.parametrize("size", [1_000_000, 2**40 + 12_345])
def test_a_proof_at_a_million_leaves_reads_a_few_dozen_nodes_in_one_batch(size: int) -> None:
    nodes = UniformNodes(size)
    tree, leaf = Tree(nodes, size), rfc_leaf(b"event")
    root = tree.root()
    assert root == uniform_root(size)
    for m in (0, 1, size // 3, size - 2, size - 1):
        assert verify_inclusion(m, size, leaf, tree.inclusion_proof(m), root)
    for m in (1, 2, size // 3, size - 1, size):
        assert verify_consistency(m, size, tree.root(m), root, tree.consistency_proof(m))
    assert len(nodes.reads) == 1 + 5 + 5 * 2
    assert max(nodes.reads) <= key_bound(size)


def test_the_module_needs_the_standard_library_alone() -> None:
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import ledger.domain.merkle\n"
        "print(' '.join(sorted(n for n in set(sys.modules) - before if not n.startswith('ledger')"
        " and n.split('.')[0] not in sys.stdlib_module_names)))\n"
        "print(' '.join(n for n in sys.modules if n.startswith('ledger.')"
        " and not n.startswith('ledger.domain')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
