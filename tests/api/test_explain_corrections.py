"""`?explain=` of a KPI names every event a figure rests on, the corrections that changed it too."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import envelope

BATCH = "B-2026-0142"


def post(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/events", json=body)
    assert r.status_code == 201, r.text
    return body


def test_explain_lists_the_correction_that_changed_an_inspections_defects(
    client: TestClient,
) -> None:
    post(client, envelope(stream_id=BATCH))
    data = {"stage": "final", "sample_size": 50, "defects": 0, "result": "pass"}
    inspection = post(client, envelope("inspection.recorded", BATCH, data))
    correction = post(
        client,
        envelope(
            "event.corrected",
            BATCH,
            {
                "corrects_event_id": inspection["event_id"],
                "reason": "recounted: five cracked welds",
                "data": data | {"defects": 5},
            },
        ),
    )
    params = {"period": "2026-11", "department": "production", "explain": "defect_rate"}
    body = client.get("/v1/kpis", params=params).json()
    assert body["kpis"]["production"]["numerator"] == 5
    (contribution,) = body["contributions"]
    both = sorted([inspection["event_id"], correction["event_id"]])
    assert contribution["numerator"] == 5
    assert contribution["numerator_events"] == both
    assert contribution["denominator_events"] == both
    assert sorted(e["event_id"] for e in body["events"]) == both
    shown = next(e for e in body["events"] if e["event_id"] == correction["event_id"])
    assert shown["data"]["data"]["defects"] == 5
