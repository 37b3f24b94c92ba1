"""The OpenAPI document is whole (every `$ref` resolves inside it) and the documentation pages
work on a network without the internet: their scripts, styles and fonts come from the server."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
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


class Assets(HTMLParser):
    """The URLs of the scripts, styles and icons a page loads."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        url = attributes.get("src") if tag == "script" else attributes.get("href")
        if tag in ("script", "link") and url:
            self.urls.append(url)


def assets_of(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return parser.urls


CONTENT_TYPES = {
    ".js": ("text/javascript", "application/javascript"),
    ".css": ("text/css",),
    ".png": ("image/png",),
}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_documentation_page_loads_everything_from_the_server(
    docs_client: TestClient, page: str
) -> None:
    response = docs_client.get(page)
    assert response.status_code == 200
    assert "://" not in response.text  # no CDN, no web fonts, no link to anywhere else
    urls = assets_of(response.text)
    assert any(url.endswith(".js") for url in urls), urls
    for url in urls:
        asset = docs_client.get(url)
        assert asset.status_code == 200, url
        content_type = asset.headers["content-type"].partition(";")[0]
        assert content_type in CONTENT_TYPES[url[url.rindex(".") :]], (url, content_type)
        assert len(asset.content) > 1000, url


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_browser_may_load_nothing_from_another_origin_on_a_documentation_page(
    docs_client: TestClient, page: str
) -> None:
    # The bundles have addresses of their own built in: Swagger UI's validator badge, Redoc's
    # logo. The page's policy keeps the browser from asking for them.
    policy = docs_client.get(page).headers["content-security-policy"]
    directives = dict(d.strip().partition(" ")[::2] for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    for directive, sources in directives.items():
        assert "http" not in sources and "*" not in sources, directive


def test_swagger_ui_asks_no_validator_on_the_internet(docs_client: TestClient) -> None:
    assert '"validatorUrl": null' in docs_client.get("/docs").text


def test_the_documentation_pages_show_this_document(docs_client: TestClient) -> None:
    assert "url: '/openapi.json'" in docs_client.get("/docs").text
    assert 'spec-url="/openapi.json"' in docs_client.get("/redoc").text
