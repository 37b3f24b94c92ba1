"""Dispute timelines over HTTP: linked streams, corrections, as-of cuts and fingerprints."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import envelope


def post(client: TestClient, body: Any) -> dict[str, Any]:
    r = client.post("/v1/events", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["receipts"][0]  # type: ignore[no-any-return]


def lot(stream_id: str, **kw: Any) -> dict[str, Any]:
    data = {"kind": "material", "product": "steel tube", "quantity": 2000, "supplier": "Hebei"}
    return envelope(stream_id=stream_id, data=data, department="procurement", **kw)


def batch(stream_id: str, lots: list[str], **kw: Any) -> dict[str, Any]:
    data = {"kind": "production", "product": "frame", "quantity": 500, "material_lots": lots}
    return envelope(stream_id=stream_id, data=data, **kw)


def complaint(stream_id: str, batches: list[str], **kw: Any) -> dict[str, Any]:
    data = {"customer": "ACME", "batch_ids": batches, "description": "cracks", "severity": "major"}
    return envelope("complaint.filed", stream_id=stream_id, data=data, department="sales", **kw)


def test_a_complaint_timeline_spans_its_batches_and_their_lots_in_time_order(
    client: TestClient,
) -> None:
    post(client, lot("M-1", occurred_at="2026-11-01T08:00:00+08:00"))
    post(client, lot("M-unrelated", occurred_at="2026-11-01T09:00:00+08:00"))
    post(client, batch("B-1", ["M-1"], occurred_at="2026-11-02T08:00:00+08:00"))
    post(client, complaint("C-1", ["B-1"], occurred_at="2026-11-05T08:00:00+08:00"))
    # recorded later, occurred earlier: the timeline orders by occurred_at
    post(
        client,
        envelope("inspection.recorded", stream_id="B-1", occurred_at="2026-11-03T08:00:00+08:00"),
    )

    body = client.get("/v1/complaints/C-1/timeline").json()
    streams = [e["stream"]["id"] for e in body["events"]]
    assert streams == ["M-1", "B-1", "B-1", "C-1"]
    assert [e["type"] for e in body["events"]][2] == "inspection.recorded"
    assert body["complaint_id"] == "C-1"
    assert body["position"] == 5
    assert len(body["fingerprint"]) == 64

    batch_view = client.get("/v1/batches/B-1/timeline").json()
    assert [e["stream"]["id"] for e in batch_view["events"]] == ["M-1", "B-1", "B-1"]


def test_a_correction_is_shown_beside_the_original_and_relinks_the_complaint(
    client: TestClient,
) -> None:
    post(client, batch("B-1", []))
    post(client, batch("B-2", []))
    filed = complaint("C-1", ["B-1"])
    post(client, filed)
    fix = envelope(
        "event.corrected",
        stream_id="C-1",
        stream_type="complaint",
        department="sales",
        data={
            "corrects_event_id": filed["event_id"],
            "reason": "wrong batch",
            "data": {**filed["data"], "batch_ids": ["B-2"]},
        },
    )
    post(client, fix)
    events = client.get("/v1/complaints/C-1/timeline").json()["events"]
    original = next(e for e in events if e["event_id"] == filed["event_id"])
    assert original["corrected_by"] == fix["event_id"]
    assert original["data"]["batch_ids"] == ["B-1"]  # the original stays as it was
    assert {e["stream"]["id"] for e in events} == {"C-1", "B-2"}


def test_as_of_shows_what_the_ledger_knew_then(client: TestClient) -> None:
    post(client, batch("B-1", []))
    first = post(client, complaint("C-1", ["B-1"]))
    before = client.get("/v1/complaints/C-1/timeline", params={"as_of": first["recorded_at"]})
    post(client, envelope("investigation.reported", stream_id="C-1", stream_type="complaint"))
    again = client.get("/v1/complaints/C-1/timeline", params={"as_of": first["recorded_at"]})
    live = client.get("/v1/complaints/C-1/timeline").json()

    assert before.json() == again.json()  # later appends never change an earlier as-of result
    assert before.json()["position"] == 2
    assert len(before.json()["events"]) == 2
    assert len(live["events"]) == 3
    assert live["fingerprint"] != before.json()["fingerprint"]


def test_a_complaint_unknown_then_is_404_and_a_bad_as_of_is_422(client: TestClient) -> None:
    assert client.get("/v1/complaints/C-none/timeline").status_code == 404
    post(client, complaint("C-1", []))
    early = client.get("/v1/complaints/C-1/timeline", params={"as_of": "2000-01-01T00:00:00Z"})
    assert early.status_code == 404
    for bad in ("yesterday", "2026-11-02T08:15:00", "1700000000"):
        r = client.get("/v1/complaints/C-1/timeline", params={"as_of": bad})
        assert r.status_code == 422, bad


def test_a_complaint_recorded_after_the_as_of_time_is_not_recorded_yet_rather_than_unknown(
    client: TestClient,
) -> None:
    first = post(client, lot("M-1"))
    filed = post(client, complaint("C-1", []))
    early = {"as_of": first["recorded_at"]}
    for path in ("/v1/complaints/C-1/timeline", "/v1/complaints/C-1/responsibility"):
        r = client.get(path, params=early)
        assert r.status_code == 404
        assert r.json()["detail"] == (
            "complaint 'C-1' was not recorded yet at that time: its first event was recorded at "
            + filed["recorded_at"]
        )
    assert client.get("/v1/complaints/C-2/timeline").json()["detail"] == "no complaint 'C-2'"
    assert client.get("/v1/batches/B-9/timeline", params=early).status_code == 404
