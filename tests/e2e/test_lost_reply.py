"""Idempotency that survives a lost reply (issue 3, item 5), over a real network fault.

A TCP proxy between the ledger and PostgreSQL closes the connection right after the server has
acknowledged `COMMIT`: the events are stored, but the client never hears so. The library then
retries the insert on a fresh connection, which hits the rows it has just stored and raises
`IntegrityError`. The ledger must answer with the original receipts — never a 409, never a
second copy.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from ledger.api.app import create_app
from ledger.application import AppendResult, Ledger
from ledger.domain.events import Envelope, EnvelopeBase
from ledger.settings import Settings
from ledger.storage.keys import KeyStore
from tests.conftest import FrozenClock, bearer, envelope, pg_database
from tests.support.proxy import PgProxy

pytestmark = pytest.mark.postgres

ENVELOPE: TypeAdapter[Any] = TypeAdapter(Envelope)
UNIQUE_VIOLATION = "23505"


def envelopes(*bodies: dict[str, Any]) -> list[EnvelopeBase]:
    return [ENVELOPE.validate_python(b) for b in bodies]


def direct(schema: str) -> psycopg.Connection[Any]:
    """A connection that bypasses the proxy, to see what the server really holds."""
    db = pg_database(schema)
    return psycopg.connect(
        host=db.host, port=db.port, user=db.user, password=db.password, dbname=db.name
    )


def stored_copies(schema: str, event_ids: list[str]) -> dict[str, tuple[int, int]]:
    """event_id → (rows in event_ids, rows in the events table), read past the proxy."""
    with direct(schema) as conn:
        rows = conn.execute(
            f"SELECT i.event_id::text, count(*) OVER (PARTITION BY i.event_id), "
            f"(SELECT count(*) FROM {schema}.ledger_events e "
            f" WHERE e.notification_id = i.notification_id) "
            f"FROM {schema}.event_ids i WHERE i.event_id = ANY(%s::uuid[])",
            [event_ids],
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def append_with_lost_reply(
    ledger: Ledger, proxy: PgProxy, sent: list[EnvelopeBase], *, forward_reply: bool
) -> AppendResult:
    """Append while the proxy cuts the connection after the server acknowledges COMMIT."""
    before = len(proxy.server_said())
    proxy.cut_after_commit(forward_reply=forward_reply)
    result = ledger.append(sent, source="test")
    assert proxy.cuts == 1, "the proxy never cut a connection after a COMMIT"
    said = proxy.server_said()[before:]
    # The insert was committed (and its reply lost), then retried by the library on a new
    # connection, where the server refused it as a duplicate: the IntegrityError path.
    commit = said.index(("C", "COMMIT"))
    assert ("E", UNIQUE_VIOLATION) in said[commit:], said
    return result


def assert_receipts_are_what_is_stored(
    ledger: Ledger, schema: str, sent: list[dict[str, Any]], receipts: list[dict[str, Any]]
) -> None:
    event_ids = [e["event_id"] for e in sent]
    assert [r["event_id"] for r in receipts] == event_ids
    stored = {row.event_id: row.receipt() for row in ledger.store.lookup(event_ids)}
    assert receipts == [stored[i] for i in event_ids]
    assert stored_copies(schema, event_ids) == {i: (1, 1) for i in event_ids}
    for receipt in receipts:
        stream = ledger.stream(receipt["stream"]["type"], receipt["stream"]["id"])
        (row,) = [r for r in stream if r.position == receipt["position"]]
        assert receipt["event_id"].encode() in row.state


@pytest.mark.parametrize("forward_reply", [True, False], ids=["commit-ack-seen", "commit-ack-lost"])
def test_a_lost_commit_reply_still_returns_the_original_receipt(
    proxied: Ledger, proxy: PgProxy, pg_schema: str, forward_reply: bool
) -> None:
    first = envelope()
    # Until armed, the proxy is transparent.
    (first_receipt,) = proxied.append(envelopes(first), source="test").receipts
    sent = envelope("inspection.recorded")

    result = append_with_lost_reply(proxied, proxy, envelopes(sent), forward_reply=forward_reply)

    (receipt,) = result.receipts
    assert receipt["version"] == 2 and receipt["position"] == 2
    assert_receipts_are_what_is_stored(proxied, pg_schema, [first, sent], [first_receipt, receipt])
    # An exact retry by the client, now that the network is fine, gets the same receipt.
    again = proxied.append(envelopes(sent), source="test")
    assert (again.receipts, again.created) == ([receipt], False)
    assert len(proxied.feed(0, 100)) == 2


def test_a_batch_whose_commit_reply_is_lost_returns_every_original_receipt(
    proxied: Ledger, proxy: PgProxy, pg_schema: str
) -> None:
    batch = [
        envelope(stream_id="B-1"),
        envelope("inspection.recorded", stream_id="B-1"),
        envelope(stream_id="B-2"),
        envelope("complaint.filed", stream_id="C-1", data=None),
        envelope("rework.recorded", stream_id="B-2"),
    ]

    result = append_with_lost_reply(proxied, proxy, envelopes(*batch), forward_reply=True)

    assert [r["position"] for r in result.receipts] == [1, 2, 3, 4, 5]
    assert [r["version"] for r in result.receipts] == [1, 2, 1, 1, 2]
    assert_receipts_are_what_is_stored(proxied, pg_schema, batch, result.receipts)
    assert len(proxied.feed(0, 100)) == len(batch)


def test_over_http_a_lost_commit_reply_answers_with_the_receipt_never_409(
    proxied: Ledger, proxy: PgProxy, pg_schema: str, clock: FrozenClock
) -> None:
    key, _ = KeyStore.of(proxied.store, "postgresql").create(
        "lost-reply", "admin", frozenset(), clock()
    )
    app = create_app(Settings(database_url="sqlite:///unused"), ledger=proxied)
    with TestClient(app, raise_server_exceptions=False, headers=bearer(key)) as client:
        single = envelope()
        proxy.cut_after_commit()
        r = client.post("/v1/events", json=single)
        assert proxy.cuts == 1
        assert r.status_code in (200, 201), r.text
        (receipt,) = r.json()["receipts"]

        batch = [envelope("inspection.recorded"), envelope(stream_id="B-9")]
        proxy.cut_after_commit(forward_reply=False)
        rb = client.post("/v1/events", json={"events": batch})
        assert proxy.cuts == 2
        assert rb.status_code in (200, 201), rb.text

        retry = client.post("/v1/events", json=single)
        assert retry.status_code == 200, retry.text
        assert retry.json()["receipts"] == [receipt]

        feed = client.get("/v1/events?after=0").json()["events"]
        assert [e["event_id"] for e in feed] == [e["event_id"] for e in (single, *batch)]
        assert feed[0]["hash"] == receipt["hash"]
        assert feed[0]["recorded_at"] == receipt["recorded_at"]
    receipts = [receipt, *rb.json()["receipts"]]
    assert_receipts_are_what_is_stored(proxied, pg_schema, [single, *batch], receipts)


def test_the_proxy_really_loses_the_reply_to_a_commit_that_happened(
    proxy: PgProxy, pg_schema: str
) -> None:
    """The fault is real: the client gets an error, yet the server has committed."""
    db = pg_database(pg_schema)
    with direct(pg_schema) as conn:
        conn.execute(f"CREATE TABLE {pg_schema}.probe (n int)")
        conn.commit()
    proxy.cut_after_commit(forward_reply=False)
    with psycopg.connect(
        host="127.0.0.1", port=proxy.port, user=db.user, dbname=db.name, connect_timeout=5
    ) as conn:
        conn.execute(f"INSERT INTO {pg_schema}.probe VALUES (1)")
        with pytest.raises(psycopg.OperationalError):
            conn.commit()
    assert proxy.cuts == 1
    assert ("client", "Q", "COMMIT") in proxy.traffic or ("client", "P", "COMMIT") in proxy.traffic
    with direct(pg_schema) as conn:
        assert conn.execute(f"SELECT count(*) FROM {pg_schema}.probe").fetchone() == (1,)
