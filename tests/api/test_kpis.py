"""`GET /v1/kpis…` after SPEC §9's demo: the figures HR reads, traces and exports (issue 6)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from ledger.application import Ledger
from ledger.demo import run
from ledger.readmodels.projections import Projections
from tests.conftest import bearer

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def demo(ledger: Ledger, client: TestClient) -> TestClient:
    run(Projections(ledger), NOW, say=lambda _: None)
    return client


@pytest.mark.parametrize("period", ["2026-11", "2026-Q4", "2026"])
def test_the_demo_shows_penalties_the_adjusted_defect_rate_and_incentives(
    demo: TestClient, period: str
) -> None:
    body = demo.get("/v1/kpis", params={"period": period}).json()
    assert body["period"] == period
    production = body["departments"]["production"]
    assert production["kpis"]["penalty_points"]["value"] == 2  # the late rectification plan
    # B-2026-0150 (material, procurement, uncontrollable) is left out: only B-2026-0142's final
    adjusted = production["kpis"]["defect_rate_adjusted"]
    assert (adjusted["numerator"], adjusted["denominator"], adjusted["value"]) == (0, 50, 0)
    assert production["kpis"]["defect_rate"]["denominator"] == 90
    assert adjusted["target"] == 0.02 and adjusted["met"] is True
    assert adjusted["target_from"]["level"] == "department"
    assert production["incentives"] == {"bonus_pct": 10}
    sales = body["departments"]["sales"]
    assert sales["kpis"]["complaint_handling_timeliness"]["met"] is False
    assert sales["incentives"] == {"commission_coefficient_delta": -0.05}
    assert body["departments"]["quality"]["incentives"] == {}  # no plan of quality's was due
    assert body["departments"]["procurement"]["kpis"]["material_reject_rate"]["value"] == 0.5
    ratio = body["enterprise"]["kpis"]["quality_cost_ratio"]
    assert (ratio["numerator"], ratio["denominator"]) == (18400, 2400000)
    assert body["position"] == demo.get("/v1/events?limit=1000").json()["next_after"]
    assert len(body["fingerprint"]) == 64


def test_a_rebuild_and_an_as_of_read_give_the_same_figures(
    demo: TestClient, ledger: Ledger
) -> None:
    live = demo.get("/v1/kpis", params={"period": "2026-11"})
    Projections(ledger).kpis.rebuild()
    assert demo.get("/v1/kpis", params={"period": "2026-11"}).content == live.content
    events = demo.get("/v1/events?limit=1000").json()["events"]
    escalation = next(e for e in events if e["type"] == "escalation.raised")
    as_of = {"period": "2026-11", "as_of": escalation["recorded_at"]}
    then = demo.get("/v1/kpis", params=as_of).json()
    assert then["position"] == escalation["position"]
    production = then["departments"]["production"]["kpis"]
    assert production["penalty_points"]["value"] == 2  # breached then, unanswered
    assert production["defect_rate_adjusted"]["denominator"] == 50
    assert demo.get("/v1/kpis", params=as_of).content == demo.get("/v1/kpis", params=as_of).content


def test_explain_returns_the_events_behind_numerator_and_denominator(demo: TestClient) -> None:
    params = {"period": "2026-11", "department": "production", "explain": "defect_rate_adjusted"}
    body = demo.get("/v1/kpis", params=params).json()
    assert body["kpis"]["production"]["denominator"] == 50
    (contribution,) = body["contributions"]
    (event,) = body["events"]
    assert contribution["denominator_events"] == [event["event_id"]]
    assert event["stream"]["id"] == "B-2026-0142"
    assert event["data"]["stage"] == "final"
    penalties = demo.get("/v1/kpis", params={**params, "explain": "penalty_points"}).json()
    types = {e["type"] for e in penalties["events"]}
    assert types == {"notification.sent", "rectification.planned"}


def test_people_have_their_personal_kpis(demo: TestClient) -> None:
    welder = demo.get("/v1/kpis/people/E3107", params={"period": "2026-11"}).json()
    assert welder["departments"]["production"]["kpis"]["process_compliance_rate"]["value"] == 0
    inspector = demo.get("/v1/kpis/people/E1024", params={"period": "2026"}).json()
    assert inspector["departments"]["quality"]["kpis"]["inspection_miss_rate"]["value"] == 1
    owner = demo.get("/v1/kpis/people/E3001", params={"period": "2026-11"}).json()
    assert owner["departments"]["production"]["kpis"]["rectification_completion_rate"]["value"] == 1
    buyer = demo.get("/v1/kpis/people/E2001", params={"period": "2026-11"}).json()
    assert buyer["departments"]["procurement"]["kpis"]["material_reject_rate"]["value"] == 0.5
    nobody = demo.get("/v1/kpis/people/E9999", params={"period": "2026-11"})
    assert nobody.status_code == 404 and "E9999" in nobody.json()["detail"]


def test_hr_exports_a_period_as_csv(demo: TestClient, make_key: Callable[..., str]) -> None:
    hr = bearer(make_key("hr"))
    r = demo.get("/v1/kpis", params={"period": "2026-11", "format": "csv"}, headers=hr)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    json_body = demo.get("/v1/kpis", params={"period": "2026-11"}, headers=hr).json()
    assert r.headers["x-ledger-fingerprint"] == json_body["fingerprint"]
    lines = list(csv.DictReader(io.StringIO(r.text)))
    bonus = next(x for x in lines if x["kpi"] == "defect_rate_adjusted")
    assert bonus["department"] == "production"
    assert (bonus["value"], bonus["met"], bonus["incentive"], bonus["incentive_value"]) == (
        "0", "true", "bonus_pct", "10",
    )  # fmt: skip
    penalty = next(
        x for x in lines if x["kpi"] == "penalty_points" and x["department"] == "production"
    )
    assert penalty["value"] == "2"


def test_hr_may_read_kpis_and_an_integrator_may_not(
    demo: TestClient, make_key: Callable[..., str]
) -> None:
    for role, status in (("hr", 200), ("director", 200), ("auditor", 200), ("integrator", 403)):
        key = bearer(make_key(role, departments=["production"] if role == "integrator" else []))
        r = demo.get("/v1/kpis", params={"period": "2026"}, headers=key)
        assert r.status_code == status, role


def test_a_malformed_period_or_unknown_kpi_is_refused(demo: TestClient) -> None:
    assert demo.get("/v1/kpis", params={"period": "2026-13"}).status_code == 422
    assert demo.get("/v1/kpis", params={"period": "2026-Q5"}).status_code == 422
    assert demo.get("/v1/kpis").status_code == 422
    r = demo.get("/v1/kpis", params={"period": "2026", "explain": "happiness"})
    assert r.status_code == 422
