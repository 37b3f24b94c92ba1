"""Bad input gets a 4xx problem naming what is wrong in the sender's words, never a 500."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from ledger.api.app import create_app
from ledger.settings import Settings
from tests.conftest import FrozenClock, envelope

PROBLEM = "application/problem+json"
# What pydantic's own messages carry and a sender should never see.
INTERNALS = (
    "Value error",
    "Assertion failed",
    "function-after",
    "function-before",
    "function-wrap",
    "function-plain",
    "should match pattern",
    "found using",
    "after validation",
    "[type=",
    "input_value",
    "^[",
    "{0,",
    "\\d",
)


def stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def post(client: TestClient, body: Any) -> Any:
    return client.post("/v1/events", json=body)


@pytest.fixture
def seeded(client: TestClient, clock: FrozenClock) -> dict[str, Any]:
    """A batch inspected by E1024, a complaint about it, a notification to `logistics`; the
    receipts by event type."""
    at = stamp(clock.now - timedelta(days=1))
    events = [
        envelope(stream_id="B-1", occurred_at=at),
        envelope("inspection.recorded", stream_id="B-1", occurred_at=at),
        envelope("complaint.filed", stream_id="C-1", occurred_at=at, department="sales"),
        envelope(
            "notification.sent",
            stream_id="C-1",
            stream_type="complaint",
            occurred_at=at,
            department="quality",
            data={"to_department": "logistics", "action": "investigate"},
        ),
    ]
    events[2]["data"]["batch_ids"] = ["B-1"]
    r = post(client, {"events": events})
    assert r.status_code == 201, r.text
    return {e["type"]: rc for e, rc in zip(events, r.json()["receipts"], strict=True)}


def as_of_routes(year: int) -> list[tuple[str, dict[str, str]]]:
    period = {"period": str(year)}
    return [
        ("/v1/complaints/C-1/timeline", {}),
        ("/v1/batches/B-1/timeline", {}),
        ("/v1/complaints/C-1/responsibility", {}),
        ("/v1/sla", {}),
        ("/v1/kpis", period),
        ("/v1/kpis/people/E1024", period),
    ]


def assert_problem(r: Any, status: int, *names: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    for name in names:
        assert name in body["detail"], body
    return body


def assert_readable(body: dict[str, Any]) -> None:
    texts = [body["detail"], *(f"{e['field']} {e['message']}" for e in body.get("errors") or [])]
    for text in texts:
        for internal in INTERNALS:
            assert internal not in text, (internal, body)


@pytest.mark.parametrize(
    "as_of",
    ["9999-12-31T23:59:59-00:01", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59.999999-23:59"],
)
def test_an_as_of_beyond_the_range_of_utc_times_is_422_naming_as_of_on_every_as_of_route(
    client: TestClient, seeded: dict[str, Any], clock: FrozenClock, as_of: str
) -> None:
    for path, params in as_of_routes(clock.now.year):
        assert client.get(path, params=params).status_code == 200, path
        body = assert_problem(client.get(path, params={**params, "as_of": as_of}), 422, "as_of")
        assert_readable(body)
        assert "UTC" in body["detail"]


def test_times_at_the_ends_of_the_utc_range_are_still_taken(
    client: TestClient, seeded: dict[str, Any], clock: FrozenClock
) -> None:
    for path, params in as_of_routes(clock.now.year):
        late = client.get(path, params={**params, "as_of": "9999-12-31T23:59:59.999999Z"})
        assert late.status_code == 200, (path, late.text)
    early = client.get("/v1/sla", params={"as_of": "0001-01-01T00:00:00Z"})
    assert early.status_code == 200 and early.json()["items"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "0001-01-01T00:00:00+00:01"),
        ("due_at", "9999-12-31T23:59:59-00:01"),
    ],
)
def test_an_event_time_without_a_utc_form_is_refused_not_stored(
    client: TestClient, field: str, value: str
) -> None:
    sent = envelope(
        "notification.sent",
        stream_id="C-1",
        stream_type="complaint",
        data={"to_department": "quality", "action": "investigate"},
    )
    if field == "occurred_at":
        sent["occurred_at"] = value
    else:
        sent["data"]["due_at"] = value
    body = assert_problem(post(client, sent), 422, field)
    assert_readable(body)
    assert client.get("/v1/events").json()["events"] == []


ARABIC_INDIC_2026 = "\u0662\u0660\u0662\u0666"  # ٢٠٢٦


@pytest.mark.parametrize(
    "period", [ARABIC_INDIC_2026, f"{ARABIC_INDIC_2026}-Q1", "2026-\u0661\u0661", "２０２６"]
)
def test_a_period_in_other_digits_than_ascii_is_refused_in_a_query(
    client: TestClient, period: str
) -> None:
    body = assert_problem(client.get("/v1/kpis", params={"period": period}), 422, "period")
    assert "YYYY, YYYY-Qn or YYYY-MM" in body["detail"]
    assert_readable(body)


def test_a_period_in_other_digits_than_ascii_is_refused_in_a_target(client: TestClient) -> None:
    target = envelope("target.set", stream_id="P-2026")
    target["actor"]["department"] = "management"
    for period in (ARABIC_INDIC_2026, "２０２６-Q1"):
        target["data"] = {**target["data"], "period": period}
        body = assert_problem(post(client, target), 422, "data.period")
        assert "YYYY, YYYY-Qn or YYYY-MM" in body["detail"]
        assert_readable(body)
    target["data"] = {**target["data"], "period": "2026", "baseline_period": ARABIC_INDIC_2026}
    assert_problem(post(client, target), 422, "data.baseline_period")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "\u0662\u0660\u0662\u0666-11-02T08:15:00+08:00"),
        ("occurred_at", "2026-11-02T08:15:00.\u0661\u0662Z"),
        ("amount", "\u0661\u0662.50"),
    ],
)
def test_times_and_amounts_take_only_ascii_digits(
    client: TestClient, field: str, value: str
) -> None:
    if field == "amount":
        sent = envelope(
            "quality_cost.recorded",
            data={"amount": value, "currency": "EUR", "category": "prevention"},
        )
    else:
        sent = envelope(occurred_at=value)
    assert_readable(assert_problem(post(client, sent), 422, field))


def get_routes() -> list[str]:
    """Every GET route of the app, as a template."""
    app = create_app(Settings(database_url="sqlite:///unused"))
    return sorted(
        route.path
        for route in iter_route_contexts(app.routes)
        if "GET" in (route.methods or ())
        and route.path not in ("/docs", "/redoc")
        and not route.path.startswith(("/docs/", "/openapi"))
    )


SAMPLE_IDS = {
    "complaint_id": "C-1",
    "batch_id": "B-1",
    "stream_type": "batch",
    "stream_id": "B-1",
    "actor_id": "E1024",
}


def sample_path(template: str) -> str:
    path = template
    for name, value in SAMPLE_IDS.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"add a sample value for {template}"
    return path


@pytest.mark.parametrize("template", get_routes())
def test_a_query_parameter_the_route_does_not_take_is_422_naming_it(
    client: TestClient, seeded: dict[str, Any], clock: FrozenClock, template: str
) -> None:
    path = sample_path(template)
    required = {  # by path prefix: the query parameters a route cannot answer without
        "/v1/kpis": {"period": str(clock.now.year)},
        "/v1/digest/proof": {"event_id": seeded["batch.registered"]["event_id"]},
        "/v1/digest/consistency": {"from_size": "1"},
    }
    needed = next((v for k, v in required.items() if template.startswith(k)), {})
    assert client.get(path, params=needed).status_code == 200, path
    r = client.get(path, params={**needed, "type": "batch.registered"})
    body = assert_problem(r, 422, "type")
    assert body["errors"] == [{"field": "query.type", "message": body["errors"][0]["message"]}]
    assert_readable(body)


def test_an_unknown_query_parameter_on_an_append_is_refused_before_anything_is_stored(
    client: TestClient,
) -> None:
    r = client.post("/v1/events", params={"dry_run": "1"}, json=envelope())
    assert_problem(r, 422, "dry_run")
    assert client.get("/v1/events").json()["events"] == []


def test_the_feed_filtered_by_an_unknown_parameter_says_what_it_takes(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/events", params={"type": "x"}), 422, "type")
    assert "after" in body["detail"] and "limit" in body["detail"]


def test_a_single_valued_parameter_given_twice_is_422(client: TestClient) -> None:
    r = client.get("/v1/events?limit=1&limit=1000")
    assert_problem(r, 422, "limit")


def test_an_unknown_query_parameter_still_needs_a_key_first(client: TestClient) -> None:
    r = client.get("/v1/events", params={"type": "x"}, headers={"Authorization": ""})
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/kpis", {"department": "prodution"}),
        ("/v1/kpis", {"department": "prodution", "explain": "defect_rate"}),
        ("/v1/kpis", {"department": "prodution", "format": "csv"}),
        ("/v1/sla", {"department": "prodution"}),
    ],
)
def test_a_department_the_ledger_never_saw_is_404_naming_the_known_ones(
    client: TestClient,
    seeded: dict[str, Any],
    clock: FrozenClock,
    path: str,
    params: dict[str, str],
) -> None:
    if path == "/v1/kpis":
        params = {**params, "period": str(clock.now.year)}
    body = assert_problem(client.get(path, params=params), 404, "prodution")
    assert "known: logistics, procurement, production, quality, sales" in body["detail"]


def test_a_person_the_ledger_never_saw_is_404(
    client: TestClient, seeded: dict[str, Any], clock: FrozenClock
) -> None:
    year = str(clock.now.year)
    for params in ({"period": year}, {"period": year, "explain": "inspection_miss_rate"}):
        assert_problem(client.get("/v1/kpis/people/E0000", params=params), 404, "E0000")
        assert client.get("/v1/kpis/people/E1024", params=params).status_code == 200


def test_a_department_or_person_known_only_from_a_target_is_known(
    client: TestClient, clock: FrozenClock
) -> None:
    target = envelope("target.set", stream_id="P-1", occurred_at=stamp(clock.now))
    target["actor"]["department"] = "management"
    target["data"] = {
        **target["data"],
        "period": str(clock.now.year),
        "level": "person",
        "department": "maintenance",
        "person_id": "E7",
        "kpi": "process_compliance_rate",
    }
    assert post(client, target).status_code == 201
    year = {"period": str(clock.now.year)}
    assert client.get("/v1/kpis", params={**year, "department": "maintenance"}).status_code == 200
    assert client.get("/v1/sla", params={"department": "maintenance"}).status_code == 200
    assert client.get("/v1/kpis/people/E7", params=year).status_code == 200


def test_the_departments_of_the_kpi_catalogue_are_known_on_an_empty_ledger(
    client: TestClient, clock: FrozenClock
) -> None:
    year = {"period": str(clock.now.year)}
    for department in ("production", "quality", "sales", "procurement"):
        assert client.get("/v1/kpis", params={**year, "department": department}).status_code == 200
        assert client.get("/v1/sla", params={"department": department}).status_code == 200
    r = client.get("/v1/sla", params={"department": "logistics"})
    assert_problem(r, 404, "known: procurement, production, quality, sales")


def test_an_as_of_read_judges_a_name_by_the_events_recorded_by_then(
    client: TestClient, seeded: dict[str, Any], clock: FrozenClock
) -> None:
    before = datetime.fromisoformat(seeded["batch.registered"]["recorded_at"]) - timedelta(
        microseconds=1
    )
    as_of = before.isoformat().replace("+00:00", "Z")
    year = str(clock.now.year)
    assert client.get("/v1/sla", params={"department": "logistics"}).status_code == 200
    r = client.get("/v1/sla", params={"department": "logistics", "as_of": as_of})
    assert_problem(r, 404, "logistics")
    people = client.get("/v1/kpis/people/E1024", params={"period": year, "as_of": as_of})
    assert_problem(people, 404, "E1024")
    later = client.get(
        "/v1/kpis",
        params={
            "period": year,
            "department": "logistics",
            "as_of": seeded["notification.sent"]["recorded_at"],
        },
    )
    assert later.status_code == 200, later.text


def correction_of(receipt: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    return envelope(
        "event.corrected",
        stream_id=receipt["stream"]["id"],
        stream_type=receipt["stream"]["type"],
        data={"corrects_event_id": receipt["event_id"], "reason": "typo", "data": data},
    )


def batch_data(**data: Any) -> dict[str, Any]:
    return envelope(data={"kind": "production", "product": "x", "quantity": 1, **data})


def target(**data: Any) -> dict[str, Any]:
    d = {"period": "2026", "level": "enterprise", "kpi": "defect_rate", "direction": "at_most"}
    return envelope("target.set", stream_id="P-1", data={**d, **data})


def process(**data: Any) -> dict[str, Any]:
    d = {"step": "weld", "within_spec": True, "operator_id": "E1", "operator_qualified": True,
         "equipment_id": "W1", "equipment_ok": True}  # fmt: skip
    return envelope("process.recorded", data={**d, **data})


def cost(**data: Any) -> dict[str, Any]:
    d = {"amount": "1.00", "currency": "EUR", "category": "prevention"}
    return envelope("quality_cost.recorded", data={**d, **data})


INVALID_EVENTS: list[tuple[str, Any]] = [
    ("not a number", batch_data(quantity="abc")),
    ("not positive", batch_data(quantity=-1)),
    ("no time", envelope(occurred_at="yesterday")),
    ("local time", envelope(occurred_at="2026-11-02T08:15:00")),
    ("unknown type", {**envelope(), "type": "batch.exploded"}),
    ("no type", {k: v for k, v in envelope().items() if k != "type"}),
    ("bad stream id", envelope(stream_id="B 1")),
    ("bad department", envelope(department="Production")),
    ("material with a line", batch_data(kind="material", line="L")),
    ("bad amount", cost(amount="1.2345678", currency="eur")),
    ("bad kpi", target(kpi="Defect Rate", target=1)),
    ("target both ways", target(target=1, change_pct=5, baseline_period="2025")),
    ("too large an integer", envelope(attributes={"n": 2**60})),
    ("bad event id", {**envelope(), "event_id": "not-a-uuid"}),
    ("negative version", {**envelope(), "expected_version": -1}),
    ("unknown field", {**envelope(), "colour": "red"}),
    ("empty batch", {"events": []}),
    ("a batch with a bad event", {"events": [envelope(), batch_data(quantity="abc")]}),
    ("not an object", [1, 2]),
    ("parameters not numbers", process(parameters={"int": "hot", "amps": "high"})),
]

INVALID_QUERIES: list[tuple[str, dict[str, str]]] = [
    ("/v1/kpis", {"period": "2026-13"}),
    ("/v1/kpis", {"period": "26"}),
    ("/v1/kpis", {}),
    ("/v1/kpis", {"period": "2026", "department": "Sales Dept"}),
    ("/v1/kpis", {"period": "2026", "explain": "happiness"}),
    ("/v1/kpis", {"period": "2026", "as_of": "noon"}),
    ("/v1/sla", {"state": "late"}),
    ("/v1/sla", {"as_of": "2026-02-30T00:00:00Z"}),
    ("/v1/events", {"after": "-1"}),
    ("/v1/events", {"limit": "many"}),
    ("/v1/streams/batch/B 1", {}),
    ("/v1/streams/lot/B-1", {}),
    ("/v1/complaints/C%201/timeline", {}),
]


def test_no_message_about_an_invalid_event_shows_pydantic_internals(client: TestClient) -> None:
    for why, body in INVALID_EVENTS:
        r = post(client, body)
        assert r.status_code == 422, (why, r.text)
        assert_readable(r.json())


def test_a_number_that_is_neither_integer_nor_float_is_one_error_at_its_field(
    client: TestClient,
) -> None:
    r = post(client, envelope(data={"kind": "production", "product": "x", "quantity": "abc"}))
    assert r.json()["errors"] == [
        {"field": "data.quantity", "message": "Input should be a valid number"}
    ]


def test_a_pattern_error_says_what_the_value_looks_like(client: TestClient) -> None:
    body = post(client, envelope(department="Production")).json()
    assert body["errors"][0]["field"] == "actor.department"
    assert "lowercase letter" in body["errors"][0]["message"]


def test_no_message_about_an_invalid_query_shows_pydantic_internals(client: TestClient) -> None:
    for path, params in INVALID_QUERIES:
        r = client.get(path, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert_readable(r.json())


def test_a_correction_that_does_not_fit_the_corrected_event_is_422_in_plain_words(
    client: TestClient,
) -> None:
    (receipt,) = post(client, envelope()).json()["receipts"]
    for data in (
        {"kind": "production", "product": "x", "quantity": "abc"},
        {"kind": "material", "product": "x", "quantity": 1, "line": "L"},
        {"kind": "production", "product": "x", "quantity": 1, "material_lots": ["L 1"]},
    ):
        r = post(client, correction_of(receipt, data))
        assert r.status_code == 422, r.text
        assert_readable(r.json())
    fields = [e["field"] for e in r.json()["errors"]]
    assert fields == ["data.data.material_lots.0"]


def test_an_unknown_event_type_lists_the_known_ones_in_plain_words(client: TestClient) -> None:
    body = post(client, {**envelope(), "type": "batch.exploded"}).json()
    assert body["errors"][0]["field"] == "type"
    assert "'batch.registered'" in body["detail"] and "batch.exploded" in body["detail"]


def policy(sla: dict[str, Any]) -> dict[str, Any]:
    sent = envelope("target.set", stream_id="P-1")
    sent["type"], sent["data"] = "policy.set", {"sla": sla}
    sent["actor"]["department"] = "management"
    return sent


@pytest.mark.parametrize(
    "sla",
    [
        {"windows_hours": {"investigate": 1e300}},
        {"windows_hours": {"investigate": 87_601}},
        {"backdating_tolerance_hours": 1e300},
    ],
)
def test_an_sla_window_without_an_end_is_refused_and_the_board_keeps_working(
    client: TestClient, seeded: dict[str, Any], sla: dict[str, Any]
) -> None:
    assert_readable(assert_problem(post(client, policy(sla)), 422, "hours"))
    assert client.get("/v1/sla").status_code == 200


def test_a_ten_year_sla_window_is_taken(client: TestClient, seeded: dict[str, Any]) -> None:
    assert post(client, policy({"windows_hours": {"investigate": 87_600}})).status_code == 201
    assert client.get("/v1/sla").status_code == 200


def test_a_figure_too_large_to_add_up_exactly_is_refused_and_the_kpis_keep_working(
    client: TestClient, seeded: dict[str, Any], clock: FrozenClock
) -> None:
    rework = envelope("rework.recorded", stream_id="B-1", data={"units": 1e300, "scrapped": 0})
    body = assert_problem(post(client, rework), 422, "data.units")
    assert "2**53" in body["detail"]
    assert client.get("/v1/kpis", params={"period": str(clock.now.year)}).status_code == 200
