"""schemathesis drives every operation of the OpenAPI schema in-process, with every check.

JSON Schema cannot say every rule of an envelope (its event type's stream type, `occurred_at` at
most 5 minutes ahead, `defects` ≤ `sample_size`, …), so a schema-valid append may be refused with
422 for such a rule, and with 409 for the stream's state. Everything else must hold as schemathesis
checks it. LEDGER_SCHEMATHESIS_EXAMPLES sets the cases per operation and mode (default 10).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, openapi
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

MAX_EXAMPLES = int(os.environ.get("LEDGER_SCHEMATHESIS_EXAMPLES", "10"))
# Operations whose schema-valid requests the ledger may still refuse for a rule beyond the schema.
RULES_BEYOND_SCHEMA = {"POST /v1/events"}


def refused_for_a_rule_beyond_the_schema(problem: dict[str, Any]) -> bool:
    """A ledger rule (invalid-event) or a model validator's, never a type or bound the schema
    states: those would mean the published schema and the validation disagree."""
    if problem["type"].endswith("/invalid-event"):
        return True
    # JSON Schema counts 1.0 as an integer; the ledger takes integers written as integers.
    return all(
        e["message"].startswith("Value error") or e["message"] == "Input should be a valid integer"
        for e in problem["errors"]
    )


def fuzz(operation: Any, mode: GenerationMode, calls: dict[str, int]) -> None:
    """Run `MAX_EXAMPLES` cases of one operation in one mode through every check."""
    beyond = operation.label in RULES_BEYOND_SCHEMA
    positive = mode is GenerationMode.POSITIVE

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        calls[operation.label] = calls.get(operation.label, 0) + 1
        excluded = [positive_data_acceptance] if beyond else []
        response = case.call_and_validate(excluded_checks=excluded)
        if beyond and positive:
            assert response.status_code in (200, 201, 409, 422), response.text
            if response.status_code == 422:
                assert refused_for_a_rule_beyond_the_schema(response.json()), response.text

    try:
        run()
    except Unsatisfiable:
        assert not positive  # nothing to get wrong, e.g. /healthz takes no input


def test_every_operation_passes_every_check(client: TestClient) -> None:
    key = client.headers["Authorization"].removeprefix("Bearer ")
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"ApiKey": {"bearer": key}}}})
    schema = openapi.from_asgi("/openapi.json", client.app, config=config)
    failures: list[str] = []
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, calls)
            except (AssertionError, BaseExceptionGroup) as e:
                # Collect every operation's failures, then report them all.
                failures.append(f"{operation.label} [{mode.value}]: {e}")
    assert not failures, "\n\n".join(failures)
    assert {"POST /v1/events", "GET /v1/events", "GET /healthz"} <= set(calls), calls
