"""Appending and reading events over HTTP: the contract of SPEC §5–§6 and issue 3."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_KEY_NAME, FrozenClock, envelope

PROBLEM = "application/problem+json"


def post(client: TestClient, body: Any) -> Any:
    return client.post("/v1/events", json=body)


def test_an_appended_event_reads_back_from_the_feed_and_its_stream(client: TestClient) -> None:
    sent = envelope(attributes={"mes_record": "QX-88812"})
    r = post(client, sent)
    assert r.status_code == 201, r.text
    (receipt,) = r.json()["receipts"]
    assert receipt["event_id"] == sent["event_id"]
    assert receipt["stream"] == sent["stream"]
    assert receipt["version"] == 1 and receipt["position"] == 1
    assert len(receipt["hash"]) == 64

    feed = client.get("/v1/events?after=0").json()
    assert feed["next_after"] == 1
    (stored,) = feed["events"]
    for field in ("event_id", "type", "stream", "occurred_at", "actor", "data", "attributes"):
        assert stored[field] == sent[field]
    assert stored["source"] == ADMIN_KEY_NAME
    assert stored["prev_hash"] == "0" * 64
    assert stored["hash"] == receipt["hash"]
    assert stored["recorded_at"] == receipt["recorded_at"]

    stream = client.get("/v1/streams/batch/B-2026-0142").json()
    assert stream["events"] == feed["events"]


def test_the_chain_links_each_version_to_the_previous_hash(client: TestClient) -> None:
    first = post(client, envelope()).json()["receipts"][0]
    second = post(client, envelope("rework.recorded")).json()["receipts"][0]
    events = client.get("/v1/streams/batch/B-2026-0142").json()["events"]
    assert [e["version"] for e in events] == [1, 2]
    assert events[1]["prev_hash"] == first["hash"]
    assert events[1]["hash"] == second["hash"]


def test_an_exact_retry_returns_the_original_receipt_with_200(client: TestClient) -> None:
    sent = envelope()
    first = post(client, sent)
    again = post(client, sent)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(client.get("/v1/events").json()["events"]) == 1


def test_a_reused_event_id_with_other_content_is_a_conflict(client: TestClient) -> None:
    sent = envelope()
    post(client, sent)
    changed = {**sent, "data": {**sent["data"], "quantity": 501}}
    r = post(client, changed)
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    assert sent["event_id"] in r.json()["detail"]


def test_a_batch_is_all_or_nothing_across_streams(client: TestClient) -> None:
    good = envelope(stream_id="B-1")
    bad = envelope("rework.recorded", stream_id="B-never-registered")
    r = post(client, {"events": [good, bad]})
    assert r.status_code == 409
    assert client.get("/v1/events").json()["events"] == []

    ok = post(client, {"events": [good, envelope("complaint.filed", stream_id="C-1")]})
    assert ok.status_code == 201
    assert [x["position"] for x in ok.json()["receipts"]] == [1, 2]


def test_expected_version_must_match_the_stream(client: TestClient) -> None:
    assert post(client, envelope(expected_version=0)).status_code == 201
    stale = post(client, envelope("rework.recorded", expected_version=0))
    assert stale.status_code == 409
    assert "version" in stale.json()["detail"]
    assert post(client, envelope("rework.recorded", expected_version=1)).status_code == 201


def test_a_stream_cannot_start_twice_or_without_its_first_event(client: TestClient) -> None:
    assert post(client, envelope("rework.recorded")).status_code == 409
    assert post(client, envelope()).status_code == 201
    again = post(client, envelope())
    assert again.status_code == 409
    assert again.json()["type"].endswith("stream-rule")


def test_a_closed_complaint_accepts_only_reopening_corrections_and_costs(
    client: TestClient,
) -> None:
    assert post(client, envelope("complaint.filed", stream_id="C-1")).status_code == 201
    assert post(client, envelope("complaint.closed", stream_id="C-1")).status_code == 201
    late = envelope("investigation.reported", stream_id="C-1", stream_type="complaint")
    assert post(client, late).status_code == 409
    assert post(client, envelope("complaint.reopened", stream_id="C-1")).status_code == 201
    assert post(client, late).status_code == 201


def test_a_correction_must_name_an_event_of_its_own_stream(client: TestClient) -> None:
    original = envelope()
    post(client, original)
    post(client, envelope(stream_id="B-2"))
    fix = {
        "corrects_event_id": original["event_id"],
        "reason": "quantity was mistyped",
        "data": {"kind": "production", "product": "welded frame", "quantity": 480},
    }
    elsewhere = envelope("event.corrected", stream_id="B-2", data=fix)
    assert post(client, elsewhere).status_code == 409
    bad_data = envelope("event.corrected", data={**fix, "data": {"quantity": "480"}})
    r = post(client, bad_data)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"].startswith("data.data")
    assert post(client, envelope("event.corrected", data=fix)).status_code == 201


def test_nobody_but_the_ledger_appends_escalations(client: TestClient) -> None:
    post(client, envelope())
    escalation = envelope(
        "escalation.raised",
        data={
            "notification_event_id": "0b6f0000-0000-4000-8000-000000000001",
            "department": "production",
            "escalated_to": "production_director",
            "due_at": "2026-11-03T08:15:00+08:00",
        },
    )
    assert post(client, escalation).status_code == 409


def test_invalid_input_gets_422_naming_the_field(client: TestClient) -> None:
    cases = {
        "data.quantity": envelope(data={"kind": "production", "product": "x", "quantity": "5"}),
        "data.colour": envelope(
            data={"kind": "production", "product": "x", "quantity": 5, "colour": "red"}
        ),
        "occurred_at": envelope(occurred_at=1700000000),
        "expected_version": envelope(expected_version="3"),
        "stream.id": envelope(stream_id="no spaces allowed"),
        "type": {**envelope(), "type": "batch.exploded"},
        "source": {**envelope(), "source": "someone else"},
        "recorded_at": {**envelope(), "recorded_at": "2026-11-02T08:15:00Z"},
        "hash": {**envelope(), "hash": "0" * 64},
    }
    for field, body in cases.items():
        r = post(client, body)
        assert r.status_code == 422, (field, r.text)
        assert r.headers["content-type"] == PROBLEM
        fields = [e["field"] for e in r.json()["errors"]]
        assert any(f.startswith(field) for f in fields), (field, fields)
    assert client.get("/v1/events").json()["events"] == []


def test_a_time_without_offset_or_in_the_future_is_refused(
    client: TestClient, clock: FrozenClock
) -> None:
    naive = post(client, envelope(occurred_at="2026-11-02T08:15:00"))
    assert naive.status_code == 422
    future = post(client, envelope(occurred_at=(clock.now + timedelta(minutes=6)).isoformat()))
    assert future.status_code == 422
    assert future.json()["errors"][0]["field"] == "occurred_at"
    soon = (clock.now + timedelta(minutes=4)).isoformat()
    assert post(client, envelope(occurred_at=soon)).status_code == 201


def test_a_body_over_one_mebibyte_gets_413(client: TestClient) -> None:
    big = envelope(attributes={"blob": "x" * (1024 * 1024)})
    r = post(client, big)
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM


def test_malformed_or_absurdly_nested_json_gets_a_problem_not_a_500(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    for body in (b"{", b"[" * 100_000 + b"]" * 100_000, b'{"a": NaN}'):
        r = client.post("/v1/events", content=body, headers=headers)
        assert r.status_code in (400, 413, 422), r.status_code
        assert r.headers["content-type"] == PROBLEM


def test_feed_limits_are_checked(client: TestClient) -> None:
    assert client.get("/v1/events?limit=1001").status_code == 422
    assert client.get("/v1/events?after=-1").status_code == 422
    assert client.get("/v1/events?after=abc").status_code == 422


def test_the_feed_pages_in_position_order(client: TestClient) -> None:
    batch = [envelope(stream_id=f"B-{i}") for i in range(7)]
    post(client, {"events": batch})
    seen: list[int] = []
    after = 0
    while True:
        page = client.get(f"/v1/events?after={after}&limit=3").json()
        if not page["events"]:
            break
        seen += [e["position"] for e in page["events"]]
        after = page["next_after"]
    assert seen == list(range(1, 8))


def test_an_unknown_stream_is_404(client: TestClient) -> None:
    r = client.get("/v1/streams/batch/B-nope")
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM


def test_recorded_at_never_decreases_along_the_feed(client: TestClient) -> None:
    for i in range(20):
        post(client, envelope(stream_id=f"B-{i}"))
    times = [e["recorded_at"] for e in client.get("/v1/events").json()["events"]]
    assert times == sorted(times)


def test_healthz_reports_ok(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
