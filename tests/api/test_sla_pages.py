"""The SLA board in pages over HTTP, on SQLite and PostgreSQL: a walk gives every item once,
reads at its first page's position while appends go on, and refuses a cursor of another query."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import orjson
from fastapi.testclient import TestClient

from tests.conftest import FrozenClock, envelope


def at(clock: FrozenClock, hours: float) -> str:
    return (clock.now - timedelta(hours=hours)).isoformat()


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/events", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()["receipts"][0]  # type: ignore[no-any-return]


def notify(clock: FrozenClock, stream_id: str, to: str, hours: float) -> dict[str, Any]:
    return envelope("notification.sent", stream_id=stream_id, stream_type="complaint",
                    department="quality", occurred_at=at(clock, hours),
                    data={"to_department": to, "action": "investigate"})  # fmt: skip


def board(client: TestClient, clock: FrozenClock, notices: int, to: str = "production") -> None:
    post(client, envelope("complaint.filed", stream_id="C-1", department="sales",
                          occurred_at=at(clock, 100)))  # fmt: skip
    for n in range(notices):
        post(client, notify(clock, "C-1", to, 90 - n * 7))  # due times spread over the hours


def walk(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """Every page of one walk of the board, following `next_cursor` to the end."""
    pages = [client.get("/v1/sla", params=params).json()]
    while pages[-1]["next_cursor"] is not None:
        r = client.get("/v1/sla", params={**params, "cursor": pages[-1]["next_cursor"]})
        assert r.status_code == 200, r.text
        pages.append(r.json())
    return pages


def test_a_walk_of_the_board_gives_every_item_once_in_due_order(
    client: TestClient, clock: FrozenClock
) -> None:
    board(client, clock, 7)
    whole = client.get("/v1/sla").json()
    assert whole["next_cursor"] is None
    pages = walk(client, limit=3)
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p["items"]] == whole["items"]
    assert {p["position"] for p in pages} == {whole["position"]}


def test_each_page_carries_the_fingerprint_of_its_own_body(
    client: TestClient, clock: FrozenClock
) -> None:
    board(client, clock, 5)
    pages = walk(client, limit=2)
    for page in pages:
        body = {k: v for k, v in page.items() if k != "fingerprint"}
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        assert page["fingerprint"] == hashlib.sha256(canonical).hexdigest()
    assert len({p["fingerprint"] for p in pages}) == len(pages)


def test_a_walk_reads_at_its_first_pages_position_while_appends_go_on(
    client: TestClient, clock: FrozenClock
) -> None:
    board(client, clock, 6)
    before = client.get("/v1/sla").json()
    first = client.get("/v1/sla", params={"limit": 2}).json()
    # new items due before and after those already read, and an answer that fulfils one
    post(client, notify(clock, "C-1", "production", 95))
    post(client, notify(clock, "C-1", "production", 1))
    post(client, envelope("investigation.reported", stream_id="C-1", stream_type="complaint",
                          occurred_at=at(clock, 0.5)))  # fmt: skip
    pages = [first]
    while pages[-1]["next_cursor"] is not None:
        cursor = pages[-1]["next_cursor"]
        pages.append(client.get("/v1/sla", params={"limit": 2, "cursor": cursor}).json())
    assert [i for p in pages for i in p["items"]] == before["items"]
    assert {p["position"] for p in pages} == {before["position"]}
    assert len(client.get("/v1/sla").json()["items"]) == 8  # the live board counts them


def test_filters_page_the_same_way(client: TestClient, clock: FrozenClock) -> None:
    board(client, clock, 4, to="production")
    for n in range(3):
        post(client, notify(clock, "C-1", "quality", 60 - n))
    pages = walk(client, department="quality", limit=2)
    assert [len(p["items"]) for p in pages] == [2, 1]
    assert {i["department"] for p in pages for i in p["items"]} == {"quality"}
    breached = walk(client, state="breached", limit=1)
    assert len(breached) == len(client.get("/v1/sla", params={"state": "breached"}).json()["items"])


def test_a_walk_as_of_a_past_time_reads_what_the_ledger_knew_then(
    client: TestClient, clock: FrozenClock
) -> None:
    board(client, clock, 3)
    then = client.get("/v1/events").json()["events"][-1]["recorded_at"]
    post(client, notify(clock, "C-1", "production", 50))
    pages = walk(client, as_of=then, limit=1)
    assert [len(p["items"]) for p in pages] == [1, 1, 1]
    assert [i for p in pages for i in p["items"]] == (
        client.get("/v1/sla", params={"as_of": then}).json()["items"]
    )


def cursor_error(r: Any) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == ["query.cursor"]


def test_a_cursor_of_another_query_or_a_malformed_one_is_422_naming_cursor(
    client: TestClient, clock: FrozenClock
) -> None:
    board(client, clock, 3)
    cursor = client.get("/v1/sla", params={"limit": 1}).json()["next_cursor"]
    assert cursor is not None
    cursor_error(client.get("/v1/sla", params={"limit": 1, "cursor": cursor,
                                               "department": "production"}))  # fmt: skip
    cursor_error(client.get("/v1/sla", params={"cursor": cursor, "state": "open"}))
    cursor_error(client.get("/v1/sla", params={"cursor": cursor, "as_of": at(clock, 0)}))
    for bad in ("x", "not a cursor", "eyJhIjoxfQ", cursor[:-3], "W10", "é"):
        cursor_error(client.get("/v1/sla", params={"cursor": bad}))


def test_a_limit_over_1000_or_under_1_is_422(client: TestClient) -> None:
    for limit in (0, 1001):
        r = client.get("/v1/sla", params={"limit": limit})
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["query.limit"]
    assert client.get("/v1/sla", params={"limit": 1000}).status_code == 200
