"""The `merkle` read model: its root is the RFC 9162 tree hash of the events' leaves as
docs/CANONICAL.md defines them (computed here again from the stored events, without the
ledger's tree code), its proofs verify, a rebuild in other pages stores the same nodes, and
the routes give them to auditors."""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ledger import bootstrap
from ledger.domain.checkpoint import Signer, format_signer_key, open_note, parse_verifier_key
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.domain.merkle import verify_consistency, verify_inclusion
from ledger.readmodels.digest import query
from ledger.readmodels.runner import PageSize
from tests.conftest import bearer, envelope

ADAPTER: TypeAdapter[EnvelopeBase] = TypeAdapter(Envelope)


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1, recursively."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def leaves_of(parts: bootstrap.Parts) -> list[bytes]:
    """Each stored event's leaf, from docs/CANONICAL.md."""
    rows = parts.ledger.feed(0, 100_000)
    out = []
    for r in rows:
        stamp = r.recorded_at.isoformat(timespec="microseconds")[:-6] + "Z"
        digest = bytes.fromhex(json.loads(r.state)["hash"])
        out.append(b"\x01" + r.position.to_bytes(8, "big") + stamp.encode() + digest)
    return out


def append(parts: bootstrap.Parts, count: int, prefix: str) -> None:
    models = [ADAPTER.validate_python(envelope(stream_id=f"B-{prefix}-{i}")) for i in range(count)]
    for i in range(0, count, 7):  # several transactions
        parts.ledger.append(models[i : i + 7], source="test")


def nodes(parts: bootstrap.Parts) -> list[tuple[Any, ...]]:
    views = parts.projections.views
    with views.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT level, idx, hash FROM {views.table('rm_merkle_nodes')}")
        return sorted((r["level"], r["idx"], bytes(r["hash"])) for r in cursor.fetchall())


def test_the_root_is_the_tree_hash_of_the_events_leaves_and_a_rebuild_stores_the_same_nodes(
    parts: bootstrap.Parts,
) -> None:
    runner = parts.projections.digest
    runner.pages = PageSize(60.0, first=5, most=5)
    append(parts, 37, "a")
    runner.catch_up()
    append(parts, 26, "b")
    runner.catch_up()
    incremental = nodes(parts)
    runner.pages = PageSize(60.0, first=1000, most=1000)
    runner.rebuild()
    assert nodes(parts) == incremental
    leaves = leaves_of(parts)
    last = parts.ledger.last_position()
    body = query.digest(parts.projections.views, last)
    assert body == {"tree_size": 63, "position": last, "root": mth(leaves).hex()}
    cut = parts.ledger.feed(0, 40)[-1].position  # as of an earlier position: its prefix
    assert query.digest(parts.projections.views, cut)["root"] == mth(leaves[:40]).hex()


def test_every_proof_verifies_against_the_tree_hash(
    client: TestClient, parts: bootstrap.Parts, make_key: Callable[..., str]
) -> None:
    append(parts, 21, "p")
    auditor = bearer(make_key("auditor"))
    leaves = leaves_of(parts)
    rows = parts.ledger.feed(0, 1000)
    r = client.get("/v1/digest", headers=auditor)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["tree_size"], body["position"], body["root"]) == (
        21, rows[-1].position, mth(leaves).hex(),
    )  # fmt: skip
    for size in (21, 13, 1):
        root = mth(leaves[:size])
        for index in range(size):
            event_id = json.loads(rows[index].state)["event_id"]
            p = client.get(
                "/v1/digest/proof", params={"event_id": event_id, "tree_size": size},
                headers=auditor,
            ).json()  # fmt: skip
            assert (p["event_id"], p["leaf_index"], p["root"]) == (event_id, index, root.hex())
            path = [bytes.fromhex(h) for h in p["audit_path"]]
            assert verify_inclusion(index, size, bytes.fromhex(p["leaf_hash"]), path, root)
        c = client.get("/v1/digest/consistency", params={"from_size": size}, headers=auditor)
        proof = c.json()
        assert (proof["from_root"], proof["to_root"]) == (root.hex(), mth(leaves).hex())
        assert verify_consistency(
            size, 21, root, mth(leaves), [bytes.fromhex(h) for h in proof["proof"]]
        )


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/v1/digest/proof", {"event_id": "00000000-0000-4000-8000-000000000000"}, 404),
        ("/v1/digest/proof", {"event_id": "not-a-uuid"}, 422),
        ("/v1/digest/consistency", {"from_size": 4, "to_size": 3}, 422),
        ("/v1/digest/consistency", {"from_size": 99}, 422),
        ("/v1/digest/consistency", {"from_size": 0}, 422),
    ],
)
def test_a_proof_of_what_the_tree_does_not_hold_is_a_problem(
    client: TestClient, parts: bootstrap.Parts, path: str, params: dict[str, Any], status: int
) -> None:
    append(parts, 5, "q")
    r = client.get(path, params=params)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_an_inclusion_proof_of_a_tree_older_than_its_event_is_refused(
    client: TestClient, parts: bootstrap.Parts
) -> None:
    append(parts, 5, "r")
    last = parts.ledger.feed(0, 10)[-1]
    event_id = json.loads(last.state)["event_id"]
    r = client.get("/v1/digest/proof", params={"event_id": event_id, "tree_size": 3})
    assert r.status_code == 422, r.text
    assert "tree_size" in r.text


def test_only_auditors_and_admins_read_the_digest(
    client: TestClient, make_key: Callable[..., str]
) -> None:
    for role, status in (("auditor", 200), ("director", 403), ("hr", 403)):
        assert client.get("/v1/digest", headers=bearer(make_key(role))).status_code == status
    integrator = bearer(make_key("integrator", departments=["quality"]))
    assert client.get("/v1/digest", headers=integrator).status_code == 403


def test_the_digest_is_also_a_signed_checkpoint_that_its_served_key_verifies(
    client: TestClient, parts: bootstrap.Parts, checkpoint_key_file: Path
) -> None:
    append(parts, 9, "s")
    digest = client.get("/v1/digest").json()
    key = client.get("/v1/digest/key").json()
    assert key["origin"] == "quality-ledger"
    head, signers = open_note(digest["checkpoint"], [parse_verifier_key(key["key"])])
    assert signers == ("quality-ledger",)
    assert (head.origin, head.tree_size, head.root.hex()) == (
        "quality-ledger", digest["tree_size"], digest["root"],
    )  # fmt: skip
    assert stat.S_IMODE(checkpoint_key_file.stat().st_mode) == 0o600


def test_a_key_file_others_may_read_is_refused_as_a_problem_not_used(
    client: TestClient, checkpoint_key_file: Path
) -> None:
    checkpoint_key_file.write_text(format_signer_key(Signer.generate("quality-ledger")) + "\n")
    checkpoint_key_file.chmod(0o644)  # a good key, but others may read it
    r = client.get("/v1/digest")
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert str(checkpoint_key_file) not in r.text  # the server's paths stay in its log
