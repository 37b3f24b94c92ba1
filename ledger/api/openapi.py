"""The OpenAPI document, whole and with every bound written as JSON Schema, and the pages that
show it (/docs, /redoc), which load nothing from the internet.

pydantic writes a bound it cannot attach to a type (on a union, or after a validator) under its
own name (`"gt": 0`), which JSON Schema tools ignore; clients and schemathesis would then take
`0` for a valid quantity. A schema written inline (`Model.model_json_schema()` in a route's
`responses`) keeps its nested models under its own `$defs`, which its `#/$defs/…` references
cannot reach from the document's root: they move to `components/schemas`. The document is fixed
once, when first asked for.

FastAPI's own pages load Swagger UI and Redoc from a CDN (and Redoc's fonts from Google), so on a
network without the internet they stay blank. Here the pages load the copies that the
fastapi-offline package ships, served from /docs/assets, and their Content-Security-Policy keeps
the browser from asking any other origin for what the bundles name themselves (Swagger UI's
validator badge, Redoc's logo).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}
COMPONENTS = "#/components/schemas/"
ASSETS = "/docs/assets"
# Both bundles add inline styles; Swagger UI starts from an inline script, Redoc searches in a
# worker it makes from a blob, and both draw icons as data: images.
DOCS_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


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
    fixed: dict[str, Any] = _hoisted(document, components)
    fixed["components"]["schemas"] = dict(sorted(components.items()))
    fixed["paths"] = _by_reference(fixed.get("paths", {}), components)
    return fixed


def _hoisted(node: Any, components: dict[str, Any]) -> Any:
    """`node` without its nested `$defs`, which go to `components`, and `$ref`s to them."""
    if isinstance(node, list):
        return [_hoisted(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: _hoisted(value, components) for key, value in node.items() if key != "$defs"}
    for name, schema in _hoisted(node["$defs"], components).items() if "$defs" in node else ():
        if components.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}")
    ref = fixed.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        fixed["$ref"] = COMPONENTS + ref.removeprefix("#/$defs/")
    return fixed


def _by_reference(node: Any, components: dict[str, Any]) -> Any:
    """`node` with every schema that equals the component of its title as a `$ref` to it."""
    if isinstance(node, list):
        return [_by_reference(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    title = node.get("title")
    if isinstance(title, str) and components.get(title) == node:
        return {"$ref": COMPONENTS + title}
    return {key: _by_reference(value, components) for key, value in node.items()}


def docs_router(title: str) -> APIRouter:
    """/docs (Swagger UI) and /redoc, showing /openapi.json with the assets under `ASSETS`."""
    router = APIRouter(include_in_schema=False)
    headers = {"Content-Security-Policy": DOCS_POLICY}

    @router.get("/docs")
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers.update(headers)
        return page

    @router.get("/redoc")
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(headers)
        return page

    return router


def install(app: FastAPI) -> None:
    """Serve the fixed document at /openapi.json, and the pages that show it.

    The app is built with `docs_url=None, redoc_url=None`: these pages stand in for FastAPI's."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_hoisted_definitions(with_json_schema_bounds(build()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="docs-assets")
    app.include_router(docs_router(app.title))
