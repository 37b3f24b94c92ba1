"""`ledger demo` tells SPEC §9's story, and the three reads show it (issue 4's acceptance)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from ledger.application import Ledger
from ledger.demo import run
from ledger.readmodels.projections import Projections

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_the_demo_escalates_attributes_and_scores_the_late_plan(
    ledger: Ledger, client: TestClient
) -> None:
    first = run(Projections(ledger), NOW, say=lambda _: None)
    assert first > 0
    assert run(Projections(ledger), NOW, say=lambda _: None) == 0  # re-running appends nothing

    timeline = client.get("/v1/complaints/C-2026-0031/timeline").json()
    escalations = [e for e in timeline["events"] if e["type"] == "escalation.raised"]
    assert [e["data"]["escalated_to"] for e in escalations] == ["production_director"]
    assert {e["stream"]["id"] for e in timeline["events"]} == {
        "C-2026-0031", "B-2026-0142", "M-2026-0107",
    }  # fmt: skip

    chain = client.get("/v1/complaints/C-2026-0031/responsibility").json()
    (attribution,) = chain["attributions"]
    assert attribution["category"] == "operator"
    assert attribution["responsible_department"] == "production"
    assert attribution["controllable"] is True
    assert chain["suggested_causes"][0]["category"] == "operator"
    assert "material" not in {c["category"] for c in chain["suggested_causes"]}  # test passed
    assert chain["breaches"]["production"] == 1

    board = client.get("/v1/sla", params={"department": "production"}).json()
    plan = next(i for i in board["items"] if i["action"] == "rectification_plan")
    assert plan["state"] == "met_late"
    assert plan["escalated"] is True
    assert plan["penalty_points"] == 2
    late = client.get("/v1/sla", params={"state": "met_late"}).json()["items"]
    assert [i["action"] for i in late] == ["rectification_plan"]


def test_as_of_before_the_answer_shows_the_plan_breached(
    ledger: Ledger, client: TestClient
) -> None:
    run(Projections(ledger), NOW, say=lambda _: None)
    events = client.get("/v1/events?limit=1000").json()["events"]
    escalation = next(e for e in events if e["type"] == "escalation.raised")
    as_of = {"as_of": escalation["recorded_at"]}
    board = client.get("/v1/sla", params=as_of).json()
    assert [i["state"] for i in board["items"]] == ["breached"]
    assert board["position"] == escalation["position"]
    again = client.get("/v1/sla", params=as_of).json()
    assert again == board  # as-of reads are byte-stable
