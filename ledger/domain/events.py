"""The event vocabulary of SPEC §6: the envelope and one `data` model per event type."""

from __future__ import annotations

import math
import re
from datetime import UTC
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    create_model,
    model_validator,
)

from ledger.domain.time import parse_time

MAX_JSON_DEPTH = 32
MAX_SAFE_INTEGER = 2**53 - 1
# The longest SLA window or backdating tolerance (ten years): deadlines are times, and a window
# of 1e300 hours has no end to compute (it stopped the SLA and KPI read models for good).
MAX_HOURS = 87_600

STREAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
DEPARTMENT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
# Digits are [0-9], never \d: both `re` and pydantic's regex engine let \d match any Unicode
# digit (Arabic-Indic ٢٠٢٦ is a "year" to them, and int() reads it).
PERIOD_PATTERN = r"^[0-9]{4}(-Q[1-4]|-(0[1-9]|1[0-2]))?$"
AMOUNT_PATTERN = r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
KPI_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

StreamType = Literal["batch", "complaint", "plan"]


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: str) -> str:
    if not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 time with an offset, e.g. 2026-11-02T08:15:00+08:00")
    try:
        parsed = parse_time(value)
    except ValueError as e:
        raise ValueError(f"is not a valid time: {e}") from None
    try:
        # Every time is stored and compared in UTC: 0001-01-01T00:00:00+00:01 has no UTC form.
        parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("lies outside the years 0001 to 9999 once converted to UTC") from None
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _safe_number(value: float) -> float:
    # Figures are added up as exact decimals of limited precision: 1e300 rework units made
    # every KPI read of the period fail.
    _finite(value)
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError("numbers are limited to ±(2**53 - 1)")
    return value


def _safe_int(value: int) -> int:
    if abs(value) > MAX_SAFE_INTEGER:
        raise ValueError("integers are limited to ±(2**53 - 1)")
    return value


def _no_unsafe_int(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        _safe_int(value)
    return value


def _json_value(value: Any, depth: int = 1) -> Any:
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("object keys must be strings")
            _json_value(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _json_value(v, depth + 1)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        pass
    elif isinstance(value, int):
        _safe_int(value)
    elif isinstance(value, float):
        _finite(value)
    else:
        raise ValueError(f"{type(value).__name__} is not a JSON value")
    return value


# Strict scalars: a number is never a string or a time, "3" is never a number.
Timestamp = Annotated[
    StrictStr,
    AfterValidator(_rfc3339),
    Field(json_schema_extra={"format": "date-time"}, max_length=40),
]
Int = Annotated[StrictInt, AfterValidator(_safe_int)]
# The bound is checked before the union: a float member would silently take a too large int.
Number = Annotated[
    StrictInt | Annotated[StrictFloat, AfterValidator(_safe_number)],
    BeforeValidator(_no_unsafe_int),
]
Text = Annotated[StrictStr, Field(max_length=4000)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200)]
Department = Annotated[StrictStr, Field(pattern=DEPARTMENT_PATTERN)]
StreamId = Annotated[StrictStr, Field(pattern=STREAM_ID_PATTERN)]
Period = Annotated[StrictStr, Field(pattern=PERIOD_PATTERN)]
EventRef = Annotated[UUID, Field(json_schema_extra={"format": "uuid"})]
NumberMap = Annotated[
    dict[Annotated[StrictStr, Field(max_length=200)], Number], Field(max_length=500)
]
JsonObject = Annotated[
    dict[Annotated[StrictStr, Field(max_length=200)], Any], AfterValidator(_json_value)
]


class Data(BaseModel):
    """Base of every `data` model: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class BatchRegistered(Data):
    kind: Literal["material", "production"]
    product: Name
    quantity: Annotated[Number, Field(gt=0)]
    supplier: Name | None = None
    line: Name | None = None
    material_lots: Annotated[list[StreamId], Field(max_length=1000)] = []

    @model_validator(mode="after")
    def _kind_fields(self) -> BatchRegistered:
        if self.kind == "material" and (self.line is not None or self.material_lots):
            raise ValueError("a material lot has a supplier, not a line or material_lots")
        if self.kind == "production" and self.supplier is not None:
            raise ValueError("a production batch has a line and material_lots, not a supplier")
        return self


class MaterialTested(Data):
    result: Literal["pass", "fail"]
    report_id: Name
    properties: NumberMap = {}


class ProcessRecorded(Data):
    step: Name
    parameters: NumberMap = {}
    within_spec: StrictBool
    operator_id: Name
    operator_qualified: StrictBool
    equipment_id: Name
    equipment_ok: StrictBool


class InspectionRecorded(Data):
    stage: Literal["incoming", "in_process", "final", "outgoing"]
    sample_size: Annotated[Int, Field(ge=1)]
    defects: Annotated[Int, Field(ge=0)]
    result: Literal["pass", "fail"]
    defect_codes: Annotated[list[Name], Field(max_length=1000)] = []

    @model_validator(mode="after")
    def _defects_within_sample(self) -> InspectionRecorded:
        if self.defects > self.sample_size:
            raise ValueError("defects cannot exceed sample_size")
        return self


class ReworkRecorded(Data):
    units: Annotated[Number, Field(ge=0)]
    scrapped: Annotated[Number, Field(ge=0)]


class ShipmentRecorded(Data):
    customer: Name
    quantity: Annotated[Number, Field(gt=0)]
    delivery_id: Name


class ComplaintFiled(Data):
    customer: Name
    batch_ids: Annotated[list[StreamId], Field(max_length=1000)] = []
    description: Text
    severity: Literal["minor", "major", "critical"]


Action = Literal["investigate", "rectification_plan", "rectify", "verify", "confirm_customer"]


class NotificationSent(Data):
    to_department: Department
    action: Action
    due_at: Timestamp | None = None
    message: Text = ""


class InvestigationReported(Data):
    findings: Text


CauseCategory = Literal[
    "material",
    "process",
    "operator",
    "equipment",
    "inspection",
    "design",
    "logistics",
    "customer_use",
]


class CauseAttributed(Data):
    category: CauseCategory
    responsible_department: Department
    controllable: StrictBool
    evidence_event_ids: Annotated[list[EventRef], Field(max_length=1000)] = []
    note: Text = ""


class RectificationPlanned(Data):
    plan: Text
    owner_id: Name
    due_at: Timestamp


class RectificationCompleted(Data):
    summary: Text


class VerificationRecorded(Data):
    result: Literal["pass", "fail"]
    note: Text = ""


class ComplaintClosed(Data):
    customer_satisfied: StrictBool


class ComplaintReopened(Data):
    reason: Text


class QualityCostRecorded(Data):
    amount: Annotated[StrictStr, Field(pattern=AMOUNT_PATTERN, examples=["1250.00"])]
    currency: Annotated[StrictStr, Field(pattern=CURRENCY_PATTERN)]
    category: Literal["prevention", "appraisal", "internal_failure", "external_failure"]


class EventCorrected(Data):
    corrects_event_id: EventRef
    reason: Text
    data: JsonObject


class TargetSet(Data):
    period: Period
    level: Literal["enterprise", "department", "person"]
    department: Department | None = None
    person_id: Name | None = None
    kpi: Annotated[StrictStr, Field(pattern=KPI_PATTERN)]
    direction: Literal["at_most", "at_least"]
    target: Number | None = None
    change_pct: Number | None = None
    baseline_period: Period | None = None

    @model_validator(mode="after")
    def _level_and_value(self) -> TargetSet:
        if self.level in ("department", "person") and self.department is None:
            raise ValueError(f"a {self.level} target names its department")
        if self.level != "person" and self.person_id is not None:
            raise ValueError("person_id belongs to person targets only")
        if self.level == "person" and self.person_id is None:
            raise ValueError("a person target names its person_id")
        absolute = self.target is not None
        relative = self.change_pct is not None or self.baseline_period is not None
        if absolute == relative:
            raise ValueError("give either target, or change_pct with baseline_period")
        if relative and (self.change_pct is None or self.baseline_period is None):
            raise ValueError("a relative target needs both change_pct and baseline_period")
        return self


class SlaPolicy(Data):
    windows_hours: Annotated[
        dict[Action, Annotated[Number, Field(gt=0, le=MAX_HOURS)]], Field()
    ] = {}
    backdating_tolerance_hours: Annotated[Number, Field(ge=0, le=MAX_HOURS)] | None = None
    breach_penalty_points: Annotated[Number, Field(ge=0)] | None = None
    escalate_to: Annotated[StrictStr, Field(max_length=64)] | None = None


class IncentiveRule(Data):
    department: Department
    kpi: Annotated[StrictStr, Field(pattern=KPI_PATTERN)]
    outcome: Literal["bonus_pct", "commission_coefficient_delta", "promotion_score_delta"]
    met: Number
    missed: Number


class PolicySet(Data):
    sla: SlaPolicy | None = None
    incentives: Annotated[list[IncentiveRule], Field(max_length=100)] | None = None


class RevenueRecorded(Data):
    period: Period
    amount: Annotated[StrictStr, Field(pattern=AMOUNT_PATTERN)]
    currency: Annotated[StrictStr, Field(pattern=CURRENCY_PATTERN)]


class EscalationRaised(Data):
    notification_event_id: EventRef
    department: Department
    escalated_to: Annotated[StrictStr, Field(max_length=64)]
    due_at: Timestamp


ANY_STREAM: tuple[StreamType, ...] = ("batch", "complaint", "plan")
CASE_STREAMS: tuple[StreamType, ...] = ("batch", "complaint")

# type → (data model, streams it may be appended to)
VOCABULARY: dict[str, tuple[type[Data], tuple[StreamType, ...]]] = {
    "batch.registered": (BatchRegistered, ("batch",)),
    "material.tested": (MaterialTested, ("batch",)),
    "process.recorded": (ProcessRecorded, ("batch",)),
    "inspection.recorded": (InspectionRecorded, ("batch",)),
    "rework.recorded": (ReworkRecorded, ("batch",)),
    "shipment.recorded": (ShipmentRecorded, ("batch",)),
    "complaint.filed": (ComplaintFiled, ("complaint",)),
    "notification.sent": (NotificationSent, CASE_STREAMS),
    "investigation.reported": (InvestigationReported, CASE_STREAMS),
    "cause.attributed": (CauseAttributed, CASE_STREAMS),
    "rectification.planned": (RectificationPlanned, CASE_STREAMS),
    "rectification.completed": (RectificationCompleted, CASE_STREAMS),
    "verification.recorded": (VerificationRecorded, CASE_STREAMS),
    "complaint.closed": (ComplaintClosed, ("complaint",)),
    "complaint.reopened": (ComplaintReopened, ("complaint",)),
    "quality_cost.recorded": (QualityCostRecorded, ANY_STREAM),
    "event.corrected": (EventCorrected, ANY_STREAM),
    "target.set": (TargetSet, ("plan",)),
    "policy.set": (PolicySet, ("plan",)),
    "revenue.recorded": (RevenueRecorded, ("plan",)),
    "escalation.raised": (EscalationRaised, CASE_STREAMS),
}

EVENT_TYPES = tuple(VOCABULARY)


class Stream(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: StreamType
    id: StreamId


class Actor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Name
    name: Name
    department: Department


class EnvelopeBase(BaseModel):
    """Fields every envelope carries; `type` and `data` come with each event type."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    event_id: Annotated[UUID, Field(description="UUID chosen by the sender: the idempotency key")]
    stream: Stream
    occurred_at: Timestamp
    actor: Actor
    expected_version: Annotated[Int, Field(ge=0)] | None = None
    attributes: JsonObject = {}

    def to_record(self, source: str) -> dict[str, Any]:
        """The stored fields that the sender chose, in their JSON form."""
        dumped = self.model_dump(mode="json", exclude_unset=True, exclude={"expected_version"})
        return {
            "event_id": str(self.event_id),
            "type": dumped["type"],
            "stream": {"type": self.stream.type, "id": self.stream.id},
            "occurred_at": self.occurred_at,
            "actor": dumped["actor"],
            "source": source,
            "data": dumped["data"],
            "attributes": dumped.get("attributes", {}),
        }


def _class_name(event_type: str) -> str:
    return "".join(part.title() for part in re.split(r"[._]", event_type)) + "Envelope"


ENVELOPE_MODELS: dict[str, type[EnvelopeBase]] = {
    event_type: create_model(
        _class_name(event_type),
        __base__=EnvelopeBase,
        type=(Literal[event_type], ...),  # type: ignore[arg-type]
        data=(model, ...),
    )
    for event_type, (model, _) in VOCABULARY.items()
}


if TYPE_CHECKING:
    Envelope: TypeAlias = EnvelopeBase
else:
    # A union discriminated by `type`: OpenAPI lists every event type with its own `data`.
    Envelope = Annotated[
        Union[tuple(ENVELOPE_MODELS.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]


def data_model(event_type: str) -> type[Data]:
    """The pydantic model that validates `data` of `event_type`."""
    return VOCABULARY[event_type][0]
