"""A schemathesis check of the ledger's own, loaded by `schemathesis run` as its hooks file.

JSON Schema cannot say every rule of an envelope (its event type's stream type, `occurred_at` at
most 5 minutes ahead, `defects` ≤ `sample_size`, …), so a schema-valid append may be refused with
422 for such a rule (and with 409 for the stream's state), and schemathesis' own
`positive_data_acceptance` is off for POST /v1/events. This check takes its place there: a
schema-valid append is refused only for such a rule, never for a type or bound the schema states.
"""

from __future__ import annotations

from typing import Any

import schemathesis

APPEND = "POST /v1/events"


# How pydantic words a refusal for a type, bound, format or field the schema states (the ledger's
# problems keep pydantic's wording for these, without its internals).
SCHEMA_RULES = (
    "Input should",
    "Field required",
    "Extra inputs are not permitted",
    "String should",
    "Value should",
    "List should",
    "Dictionary should",
    "Decimal input should",
)
# JSON Schema counts 1.0 as an integer; the ledger takes integers written as integers.
SAME_IN_JSON_SCHEMA = ("Input should be a valid integer",)


def refused_for_a_rule_beyond_the_schema(problem: dict[str, Any]) -> bool:
    """A ledger rule (invalid-event) or a model validator's, never a type or bound the schema
    states: those would mean the published schema and the validation disagree."""
    if str(problem.get("type", "")).endswith("/invalid-event"):
        return True
    messages = [str(e.get("message", "")) for e in problem.get("errors") or []]
    return bool(messages) and all(
        m in SAME_IN_JSON_SCHEMA or not m.startswith(SCHEMA_RULES) for m in messages
    )


@schemathesis.check
def schema_valid_appends_are_refused_only_for_ledger_rules(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    """A schema-valid append answers 2xx, 401/403 (the key), 409 (the stream) or a ledger rule's
    422."""
    meta = case.meta
    if case.operation.label != APPEND or meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status in (200, 201, 401, 403, 409, 429):
        return None
    assert status == 422, f"a schema-valid append was answered {status}"
    problem = response.json()
    assert refused_for_a_rule_beyond_the_schema(problem), (
        "a schema-valid append was refused for a rule the schema states: " + str(problem)
    )
    return None


# Reads in pages: a cursor is opaque, so a schema-valid string the ledger never gave is refused.
PAGED = (
    "GET /v1/sla",
    "GET /v1/complaints/{complaint_id}/timeline",
    "GET /v1/batches/{batch_id}/timeline",
)


@schemathesis.check
def schema_valid_paged_reads_are_refused_only_for_their_cursor(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    """A schema-valid paged read answers as any read does, or 422 naming its cursor alone."""
    meta = case.meta
    if case.operation.label not in PAGED or meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in (401, 403, 404, 409, 429) or status >= 500:
        return None  # a 5xx is not_a_server_error's to judge
    assert status == 422, f"a schema-valid read was answered {status}"
    fields = [e.get("field") for e in response.json().get("errors") or []]
    assert fields == ["query.cursor"], f"a schema-valid read was refused for {fields}"
    return None


# Proofs of the digest: a size is valid only up to the tree's size, which the schema cannot say.
PROOFS = {
    "GET /v1/digest/proof": {"tree_size", "event_id"},
    "GET /v1/digest/consistency": {"from_size"},
}


@schemathesis.check
def schema_valid_proofs_are_refused_only_for_sizes_the_tree_lacks(
    ctx: Any, response: Any, case: Any
) -> bool | None:
    """A schema-valid proof request answers as any read does, or 422 naming a size (or the
    event, not counted yet) that the tree does not hold."""
    meta = case.meta
    wanted = PROOFS.get(case.operation.label)
    if wanted is None or meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if status < 400 or status in (401, 403, 404, 429) or status >= 500:
        return None  # a 5xx is not_a_server_error's to judge
    assert status == 422, f"a schema-valid proof request was answered {status}"
    fields = {e.get("field") for e in response.json().get("errors") or []}
    assert fields and fields <= wanted, f"a schema-valid proof request was refused for {fields}"
    return None
