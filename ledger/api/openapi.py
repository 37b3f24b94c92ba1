"""The OpenAPI document, whole and with every bound written as JSON Schema, and the pages that
show it (/docs, /redoc), served with their scripts and styles from the package.

pydantic writes a bound it cannot attach to a type (on a union, or after a validator) under its
own name (`"gt": 0`), which JSON Schema tools ignore; clients and schemathesis would then take
`0` for a valid quantity. A schema written inline (`Model.model_json_schema()` in a route's
`responses`) keeps its nested models under its own `$defs`, which its `#/$defs/…` references
cannot reach from the document's root: they move to `components/schemas`. The document is fixed
once, when first asked for.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}
COMPONENTS = "#/components/schemas/"


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


def with_hoisted_definitions(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every nested `$defs` moved to `components/schemas`, and every inline
    schema under `paths` that equals the component of its title replaced by a `$ref` to it."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})

    def hoist(node: Any) -> Any:
        if isinstance(node, list):
            return [hoist(item) for item in node]
        if not isinstance(node, dict):
            return node
        fixed = {key: hoist(value) for key, value in node.items() if key != "$defs"}
        for name, schema in hoist(node["$defs"]).items() if "$defs" in node else ():
            if components.setdefault(name, schema) != schema:
                raise ValueError(f"two different schemas are named {name}")
        ref = fixed.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            fixed["$ref"] = COMPONENTS + ref.removeprefix("#/$defs/")
        return fixed

    def by_reference(node: Any) -> Any:
        if isinstance(node, list):
            return [by_reference(item) for item in node]
        if not isinstance(node, dict):
            return node
        title = node.get("title")
        if isinstance(title, str) and components.get(title) == node:
            return {"$ref": COMPONENTS + title}
        return {key: by_reference(value) for key, value in node.items()}

    fixed: dict[str, Any] = hoist(document)
    fixed["components"]["schemas"] = dict(sorted(components.items()))
    fixed["paths"] = by_reference(fixed.get("paths", {}))
    return fixed


def install(app: FastAPI) -> None:
    """Serve the fixed document at /openapi.json."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_hoisted_definitions(with_json_schema_bounds(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
