"""The OpenAPI document, with every bound written as JSON Schema.

pydantic writes a bound it cannot attach to a type (on a union, or after a validator) under its
own name (`"gt": 0`), which JSON Schema tools ignore; clients and schemathesis would then take
`0` for a valid quantity. The document is fixed once, when first asked for.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def with_json_schema_bounds(node: Any) -> Any:
    """`node` with pydantic's leftover `gt`/`ge`/`lt`/`le` keys turned into JSON Schema's."""
    if isinstance(node, list):
        return [with_json_schema_bounds(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: with_json_schema_bounds(value) for key, value in node.items()}
    if "type" in fixed or "anyOf" in fixed or "oneOf" in fixed:
        for ours, theirs in BOUNDS.items():
            if isinstance(fixed.get(ours), int | float) and not isinstance(fixed[ours], bool):
                fixed.setdefault(theirs, fixed.pop(ours))
    return fixed


def install(app: FastAPI) -> None:
    """Serve the fixed document at /openapi.json."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_json_schema_bounds(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
