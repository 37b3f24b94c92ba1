"""Dispute timelines in pages over HTTP, on SQLite and PostgreSQL: the complaint's own events and
a summary of each linked batch on the first page, the batches' events on the pages that follow."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import orjson
from fastapi.testclient import TestClient

from tests.conftest import FrozenClock, envelope


def at(clock: FrozenClock, hours: float) -> str:
    return (clock.now - timedelta(hours=hours)).isoformat()


def post(client: TestClient, body: Any) -> dict[str, Any]:
    r = client.post("/v1/events", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["receipts"][0]  # type: ignore[no-any-return]


def inspection(clock: FrozenClock, batch_id: str, hours: float, result: str) -> dict[str, Any]:
    data = {"stage": "in_process", "sample_size": 5, "defects": 0 if result == "pass" else 1,
            "result": result}  # fmt: skip
    return envelope("inspection.recorded", stream_id=batch_id, occurred_at=at(clock, hours),
                    data=data)  # fmt: skip


def dispute(client: TestClient, clock: FrozenClock, inspections: int) -> None:
    """Lot M-1, batch B-1 made from it with `inspections` in-process inspections, complaint C-1
    naming B-1 (with a notification of its own)."""
    lot = {"kind": "material", "product": "steel tube", "quantity": 2000, "supplier": "Hebei"}
    post(client, envelope(stream_id="M-1", data=lot, department="procurement",
                          occurred_at=at(clock, 300)))  # fmt: skip
    made = {"kind": "production", "product": "frame", "quantity": 500, "material_lots": ["M-1"]}
    post(client, envelope(stream_id="B-1", data=made, occurred_at=at(clock, 200)))
    for n in range(inspections):
        # recorded in one order, occurred in another: pages follow occurred_at
        post(client, inspection(clock, "B-1", 150 - (n * 7) % inspections, "pass"))
    filed = {"customer": "ACME", "batch_ids": ["B-1"], "description": "cracks",
             "severity": "major"}  # fmt: skip
    post(client, envelope("complaint.filed", stream_id="C-1", data=filed, department="sales",
                          occurred_at=at(clock, 20)))  # fmt: skip
    asked = {"to_department": "production", "action": "investigate"}
    post(client, envelope("notification.sent", stream_id="C-1", stream_type="complaint",
                          department="quality", occurred_at=at(clock, 19), data=asked))  # fmt: skip


def walk(client: TestClient, path: str, **params: Any) -> list[dict[str, Any]]:
    pages = [client.get(path, params=params).json()]
    while pages[-1]["next_cursor"] is not None:
        r = client.get(path, params={**params, "cursor": pages[-1]["next_cursor"]})
        assert r.status_code == 200, r.text
        pages.append(r.json())
    return pages


def order(event: dict[str, Any]) -> tuple[str, int]:
    return event["occurred_at"], event["position"]


def test_the_first_page_holds_the_complaints_events_and_a_summary_of_each_batch(
    client: TestClient, clock: FrozenClock
) -> None:
    dispute(client, clock, 12)
    first = client.get("/v1/complaints/C-1/timeline", params={"limit": 5}).json()
    own = [e for e in first["events"] if e["stream"]["id"] == "C-1"]
    assert [e["type"] for e in own] == ["complaint.filed", "notification.sent"]
    assert len(first["events"]) == 2 + 5
    assert first["events"] == sorted(first["events"], key=order)
    batch, lot = first["batches"]
    assert batch["batch_id"] == "B-1"
    assert (batch["kind"], batch["product"], batch["material_lots"]) == (
        "production", "frame", ["M-1"],
    )  # fmt: skip
    assert batch["events"] == 13
    assert batch["types"] == {"batch.registered": 1, "inspection.recorded": 12}
    assert batch["first_occurred_at"] < batch["last_occurred_at"]
    assert (lot["batch_id"], lot["kind"], lot["events"]) == ("M-1", "material", 1)
    assert first["next_cursor"] is not None


def test_a_walk_gives_every_event_of_the_timeline_once(
    client: TestClient, clock: FrozenClock
) -> None:
    dispute(client, clock, 12)
    whole = client.get("/v1/complaints/C-1/timeline").json()
    assert whole["next_cursor"] is None
    pages = walk(client, "/v1/complaints/C-1/timeline", limit=4)
    assert [len(p["events"]) for p in pages] == [2 + 4, 4, 4, 2]
    assert all("batches" not in p for p in pages[1:])
    linked = [e for p in pages for e in p["events"] if e["stream"]["id"] != "C-1"]
    assert linked == sorted(linked, key=order)  # later pages go on in occurred_at order
    assert sorted((e for p in pages for e in p["events"]), key=order) == whole["events"]
    assert {p["position"] for p in pages} == {whole["position"]}
    assert len({p["fingerprint"] for p in pages}) == len(pages)


def test_a_batch_timeline_pages_the_batch_and_its_lots(
    client: TestClient, clock: FrozenClock
) -> None:
    dispute(client, clock, 6)
    whole = client.get("/v1/batches/B-1/timeline").json()
    pages = walk(client, "/v1/batches/B-1/timeline", limit=3)
    assert [len(p["events"]) for p in pages] == [3, 3, 2]
    assert [e for p in pages for e in p["events"]] == whole["events"]
    assert [b["batch_id"] for b in pages[0]["batches"]] == ["B-1", "M-1"]


def test_a_walk_reads_at_its_first_pages_position_while_appends_go_on(
    client: TestClient, clock: FrozenClock
) -> None:
    dispute(client, clock, 8)
    before = client.get("/v1/complaints/C-1/timeline").json()
    first = client.get("/v1/complaints/C-1/timeline", params={"limit": 3}).json()
    for hours in (400, 100, 1):  # before, between and after what the walk has read
        post(client, inspection(clock, "B-1", hours, "fail"))
    pages = [first]
    while (cursor := pages[-1]["next_cursor"]) is not None:
        r = client.get("/v1/complaints/C-1/timeline", params={"limit": 3, "cursor": cursor})
        pages.append(r.json())
    assert sorted((e for p in pages for e in p["events"]), key=order) == before["events"]
    assert {p["position"] for p in pages} == {before["position"]}


def cursor_error(r: Any) -> None:
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["query.cursor"]


def test_a_cursor_of_another_timeline_or_read_is_422_naming_cursor(
    client: TestClient, clock: FrozenClock
) -> None:
    dispute(client, clock, 4)
    cursor = client.get("/v1/complaints/C-1/timeline", params={"limit": 1}).json()["next_cursor"]
    batch = client.get("/v1/batches/B-1/timeline", params={"limit": 1}).json()["next_cursor"]
    cursor_error(client.get("/v1/batches/B-1/timeline", params={"cursor": cursor}))
    cursor_error(client.get("/v1/complaints/C-1/timeline", params={"cursor": batch}))
    cursor_error(client.get("/v1/sla", params={"cursor": cursor}))
    cursor_error(client.get("/v1/complaints/C-1/timeline",
                            params={"cursor": cursor, "as_of": at(clock, 0)}))  # fmt: skip
    for bad in ("x", "%%%", cursor[:-2]):
        cursor_error(client.get("/v1/complaints/C-1/timeline", params={"cursor": bad}))
    assert client.get("/v1/batches/B-1/timeline", params={"limit": 1001}).status_code == 422


def test_a_forged_cursor_past_any_position_is_422_not_a_500(
    client: TestClient, clock: FrozenClock
) -> None:
    """A cursor is opaque, not signed: one forged with a key past what a 64-bit column holds
    is refused like any other the ledger did not give."""
    dispute(client, clock, 4)
    cursor = client.get("/v1/batches/B-1/timeline", params={"limit": 1}).json()["next_cursor"]
    raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    for after in ([raw[4][0], 2**63], [raw[4][0], -(2**64)], [raw[4][0], 10**30]):
        text = json.dumps([*raw[:4], after]).encode()
        forged = base64.urlsafe_b64encode(text).decode().rstrip("=")
        cursor_error(client.get("/v1/batches/B-1/timeline", params={"cursor": forged}))
