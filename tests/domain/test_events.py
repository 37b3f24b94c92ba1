"""The envelope and the `data` of each event type, as the ledger reads them off the wire (422)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ledger.domain.events import MAX_SAFE_INTEGER, VOCABULARY
from tests.domain.builders import DATA, MATERIAL_LOT, envelope, validated


def errors(body: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """(where, error type) of each reason the envelope is refused; [] when it is accepted."""
    try:
        validated(body)
    except ValidationError as e:
        return [(tuple(err["loc"]), err["type"]) for err in e.errors()]
    return []


def data_errors(event_type: str, **changes: Any) -> list[tuple[str | int, ...]]:
    """Where the example data of `event_type`, with `changes` (None removes), is refused."""
    data = {k: v for k, v in {**DATA[event_type], **changes}.items() if v is not None}
    # The union's tag and "data" lead every location of a data error.
    return [loc[2:] for loc, _ in errors(envelope(event_type, data))]


# --- the envelope --------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(VOCABULARY))
def test_every_event_type_with_valid_data_is_accepted(event_type: str) -> None:
    assert errors(envelope(event_type)) == []


@pytest.mark.parametrize("event_type", list(VOCABULARY))
def test_every_event_type_refuses_unknown_data_fields(event_type: str) -> None:
    assert errors(envelope(event_type, {**DATA[event_type], "colour": "red"})) == [
        ((event_type, "data", "colour"), "extra_forbidden")
    ]


def test_an_unknown_event_type_is_refused() -> None:
    assert errors(envelope("inspection.recorded", type="inspection.done")) == [
        ((), "union_tag_invalid")
    ]


@pytest.mark.parametrize(
    "field", ["recorded_at", "position", "version", "hash", "prev_hash", "source", "colour"]
)
def test_a_sender_cannot_set_what_the_ledger_stamps_or_fields_it_does_not_know(
    field: str,
) -> None:
    assert errors({**envelope("rework.recorded"), field: "x"}) == [
        (("rework.recorded", field), "extra_forbidden")
    ]


@pytest.mark.parametrize("part", ["stream", "actor"])
def test_the_stream_and_the_actor_have_no_unknown_fields(part: str) -> None:
    body = envelope("rework.recorded")
    body[part] = {**body[part], "colour": "red"}
    assert errors(body) == [(("rework.recorded", part, "colour"), "extra_forbidden")]


@pytest.mark.parametrize("field", ["event_id", "stream", "occurred_at", "actor", "data"])
def test_an_envelope_needs_each_of_its_fields(field: str) -> None:
    body = envelope("rework.recorded")
    del body[field]
    assert errors(body) == [(("rework.recorded", field), "missing")]


@pytest.mark.parametrize("event_id", ["B-2026-0142", "", 42, "0b6f-uuid"])
def test_the_event_id_is_a_uuid(event_id: object) -> None:
    assert [loc for loc, _ in errors(envelope("rework.recorded", event_id=event_id))] == [
        ("rework.recorded", "event_id")
    ]


def test_the_stream_type_is_batch_complaint_or_plan() -> None:
    body = envelope("rework.recorded")
    body["stream"] = {"type": "lot", "id": "B-1"}
    assert errors(body) == [(("rework.recorded", "stream", "type"), "literal_error")]


@pytest.mark.parametrize("stream_id", ["B-2026-0142", "a", "9", "x.y_z-1", "A" * 64])
def test_a_stream_id_is_a_letter_or_digit_then_up_to_63_of_these_or_dot_dash_underscore(
    stream_id: str,
) -> None:
    body = envelope("rework.recorded")
    body["stream"]["id"] = stream_id
    assert errors(body) == []


@pytest.mark.parametrize(
    "stream_id",
    ["", "-B1", ".B1", "_B1", "A" * 65, "B 1", "B/1", "B1\n", "批次1", "Ｂ1", 42],
)
def test_any_other_stream_id_is_refused(stream_id: object) -> None:
    body = envelope("rework.recorded")
    body["stream"]["id"] = stream_id
    assert [loc for loc, _ in errors(body)] == [("rework.recorded", "stream", "id")]


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-11-02T08:15:00+08:00",
        "2026-11-02T00:15:00Z",
        "2026-11-02t00:15:00z",
        "2026-11-02T00:15:00.5-03:30",
        "2026-11-02T00:15:00.123456789+00:00",
    ],
)
def test_occurred_at_is_an_rfc_3339_time_with_an_offset(occurred_at: str) -> None:
    assert errors(envelope("rework.recorded", occurred_at=occurred_at)) == []


@pytest.mark.parametrize(
    "occurred_at",
    [
        "2026-11-02T08:15:00",  # no offset
        "2026-11-02",
        "2026-11-02 08:15:00Z",
        "2026-11-02T08:15Z",
        "2026-02-30T08:15:00Z",
        "2026-11-02T24:00:00Z",
        "2026-11-02T08:15:00+24:00",
        "2026-11-02T08:15:00+0800",
        "２０２６-11-02T08:15:00Z",
        1793600000,
    ],
)
def test_any_other_occurred_at_is_refused(occurred_at: object) -> None:
    assert [loc for loc, _ in errors(envelope("rework.recorded", occurred_at=occurred_at))] == [
        ("rework.recorded", "occurred_at")
    ]


@pytest.mark.parametrize("department", ["quality", "r-and_d", "q", "q" * 32, "hr2"])
def test_a_department_is_a_slug(department: str) -> None:
    body = envelope("rework.recorded")
    body["actor"]["department"] = department
    assert errors(body) == []


@pytest.mark.parametrize("department", ["Quality", "quality dept", "2q", "-q", "q" * 33, ""])
def test_a_department_that_is_not_a_slug_is_refused(department: str) -> None:
    body = envelope("rework.recorded")
    body["actor"]["department"] = department
    assert [loc for loc, _ in errors(body)] == [("rework.recorded", "actor", "department")]


@pytest.mark.parametrize("field", ["id", "name"])
def test_an_actor_has_an_id_and_a_name(field: str) -> None:
    body = envelope("rework.recorded")
    body["actor"][field] = ""
    assert [loc for loc, _ in errors(body)] == [("rework.recorded", "actor", field)]


@pytest.mark.parametrize(
    ("expected", "accepted"),
    [(0, True), (7, True), (-1, False), ("3", False), (True, False), (1.0, False)],
)
def test_expected_version_is_a_whole_number_from_0(expected: object, accepted: bool) -> None:
    assert (errors(envelope("rework.recorded", expected_version=expected)) == []) is accepted


def test_attributes_hold_free_json() -> None:
    free = {"mes_record": "QX-88812", "tags": ["a", 1, 2.5, None, True], "nested": {"k": {}}}
    assert errors(envelope("rework.recorded", attributes=free)) == []


def test_attributes_nested_deeper_than_32_levels_are_refused() -> None:
    deep: dict[str, Any] = {}
    for _ in range(31):
        deep = {"k": deep}  # 32 objects, the attributes themselves the first
    assert errors(envelope("rework.recorded", attributes=deep)) == []
    assert [loc for loc, _ in errors(envelope("rework.recorded", attributes={"k": deep}))] == [
        ("rework.recorded", "attributes")
    ]


@pytest.mark.parametrize("value", [MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1])
def test_integers_beyond_2_to_the_53_are_refused_everywhere(value: int) -> None:
    assert errors(envelope("rework.recorded", attributes={"n": value})) != []
    assert data_errors("rework.recorded", units=value) != []
    assert data_errors("rework.recorded", units=MAX_SAFE_INTEGER) == []


# --- to_record: what is stored is what was sent --------------------------------------------


def test_the_stored_record_is_what_the_sender_sent_with_its_source() -> None:
    body = envelope("notification.sent", {"to_department": "production", "action": "verify"})
    body["event_id"] = body["event_id"].upper()
    body["occurred_at"] = "2026-11-02T08:15:00.5+08:00"
    stored = validated({**body, "expected_version": 3}).to_record("mes-line-2")
    assert stored == {
        **body,
        "event_id": body["event_id"].lower(),
        "source": "mes-line-2",
        "attributes": {},
    }
    assert "message" not in stored["data"]  # defaults the sender left out are not filled in


# --- the data of each type -----------------------------------------------------------------

# (type, changes to its example data, where it is refused; None: accepted)
DATA_RULES: list[tuple[str, dict[str, Any], tuple[str | int, ...] | None]] = [
    ("batch.registered", {"quantity": 0}, ("quantity",)),
    ("batch.registered", {"quantity": -5}, ("quantity",)),
    ("batch.registered", {"quantity": "500"}, ("quantity",)),
    ("batch.registered", {"quantity": 0.5}, None),
    ("batch.registered", {"kind": "assembly"}, ("kind",)),
    ("batch.registered", {"product": ""}, ("product",)),
    ("batch.registered", {"supplier": "Bao"}, ()),
    ("batch.registered", {"material_lots": ["M 1"]}, ("material_lots", 0)),
    ("batch.registered", {"material_lots": None, "line": None}, None),
    ("batch.registered", {**MATERIAL_LOT, "line": "L2", "material_lots": None}, ()),
    ("batch.registered", {**MATERIAL_LOT, "line": None, "material_lots": ["M-1"]}, ()),
    ("material.tested", {"result": "ok"}, ("result",)),
    ("material.tested", {"properties": {"yield": "355"}}, ("properties", "yield", "int")),
    ("process.recorded", {"within_spec": "yes"}, ("within_spec",)),
    ("process.recorded", {"operator_qualified": 1}, ("operator_qualified",)),
    ("process.recorded", {"equipment_ok": None}, ("equipment_ok",)),
    ("inspection.recorded", {"stage": "final_check"}, ("stage",)),
    ("inspection.recorded", {"sample_size": 0}, ("sample_size",)),
    ("inspection.recorded", {"sample_size": 50.0}, ("sample_size",)),
    ("inspection.recorded", {"defects": -1}, ("defects",)),
    ("inspection.recorded", {"defects": 51}, ()),
    ("inspection.recorded", {"defects": 50}, None),
    ("inspection.recorded", {"defects": 0, "result": "pass", "defect_codes": None}, None),
    ("rework.recorded", {"units": -1}, ("units",)),
    ("rework.recorded", {"scrapped": -1}, ("scrapped",)),
    ("shipment.recorded", {"quantity": 0}, ("quantity",)),
    ("shipment.recorded", {"delivery_id": None}, ("delivery_id",)),
    ("complaint.filed", {"severity": "urgent"}, ("severity",)),
    ("complaint.filed", {"batch_ids": ["B/1"]}, ("batch_ids", 0)),
    ("complaint.filed", {"description": "x" * 4001}, ("description",)),
    ("complaint.filed", {"description": "x" * 4000}, None),
    ("notification.sent", {"due_at": None, "message": None}, None),
    ("notification.sent", {"action": "fix"}, ("action",)),
    ("notification.sent", {"to_department": "Production"}, ("to_department",)),
    ("notification.sent", {"due_at": "2026-11-27T12:00:00"}, ("due_at",)),
    ("cause.attributed", {"category": "weather"}, ("category",)),
    ("cause.attributed", {"controllable": "yes"}, ("controllable",)),
    ("cause.attributed", {"responsible_department": "Sales"}, ("responsible_department",)),
    ("cause.attributed", {"evidence_event_ids": ["E-1"]}, ("evidence_event_ids", 0)),
    ("rectification.planned", {"due_at": None}, ("due_at",)),
    ("verification.recorded", {"result": "partial"}, ("result",)),
    ("complaint.closed", {"customer_satisfied": "true"}, ("customer_satisfied",)),
    ("complaint.reopened", {"reason": None}, ("reason",)),
    ("quality_cost.recorded", {"amount": 1250}, ("amount",)),
    ("quality_cost.recorded", {"amount": "1,250.00"}, ("amount",)),
    ("quality_cost.recorded", {"amount": "1e3"}, ("amount",)),
    ("quality_cost.recorded", {"amount": "-80.5"}, None),
    ("quality_cost.recorded", {"currency": "cny"}, ("currency",)),
    ("quality_cost.recorded", {"category": "penalty"}, ("category",)),
    ("event.corrected", {"corrects_event_id": "E-1"}, ("corrects_event_id",)),
    ("event.corrected", {"data": ["not", "an", "object"]}, ("data",)),
    ("target.set", {"level": "department"}, ()),
    ("target.set", {"level": "department", "department": "production"}, None),
    ("target.set", {"level": "person", "department": "production"}, ()),
    ("target.set", {"level": "person", "department": "production", "person_id": "E1"}, None),
    ("target.set", {"person_id": "E1"}, ()),
    ("target.set", {"target": None}, ()),
    ("target.set", {"change_pct": -5, "baseline_period": "2025"}, ()),
    ("target.set", {"target": None, "change_pct": -5}, ()),
    ("target.set", {"target": None, "change_pct": -5, "baseline_period": "2025"}, None),
    ("target.set", {"direction": "about"}, ("direction",)),
    ("target.set", {"kpi": "Defect-Rate"}, ("kpi",)),
    ("target.set", {"period": "2026-Q4"}, None),
    ("target.set", {"period": "2026-12"}, None),
    ("target.set", {"period": "2026-Q5"}, ("period",)),
    ("target.set", {"period": "2026-13"}, ("period",)),
    ("target.set", {"period": "26"}, ("period",)),
    (
        "policy.set",
        {"sla": {"windows_hours": {"fix": 24}}},
        ("sla", "windows_hours", "fix", "[key]"),
    ),
    (
        "policy.set",
        {"sla": {"windows_hours": {"investigate": 0}}},
        ("sla", "windows_hours", "investigate"),
    ),
    ("policy.set", {"incentives": [{"department": "sales"}]}, ("incentives", 0, "kpi")),
    ("revenue.recorded", {"amount": 1000000}, ("amount",)),
    ("revenue.recorded", {"period": "2026-Q0"}, ("period",)),
    ("escalation.raised", {"due_at": None}, ("due_at",)),
    ("escalation.raised", {"notification_event_id": "N-1"}, ("notification_event_id",)),
]


@pytest.mark.parametrize(("event_type", "changes", "where"), DATA_RULES)
def test_the_data_of_each_type_is_validated(
    event_type: str, changes: dict[str, Any], where: tuple[str | int, ...] | None
) -> None:
    found = data_errors(event_type, **changes)
    if where is None:
        assert found == []
    elif where == ():  # a rule across fields
        assert () in found, found
    else:  # a number is an int or a float: its errors name the member of the union
        assert any(loc[: len(where)] == where for loc in found), found
