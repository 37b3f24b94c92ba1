"""RFC 9457 problem responses: one table maps each domain error to its status."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from ledger.domain.errors import (
    EventIdConflictError,
    EventNotFoundError,
    InvalidEventError,
    LedgerError,
    ReadModelBehindError,
    StreamNotFoundError,
    StreamRuleError,
    StreamsBusyError,
    UnavailableError,
    VersionConflictError,
)
from ledger.domain.messages import field_of, readable
from ledger.readmodels.kpis.names import UnknownNameError
from ledger.storage.signing_key import SigningKeyError

log = logging.getLogger("ledger.api")

PROBLEM_BASE = "https://quality-ledger.invalid/problems/"

# error class → (status, problem type slug, title)
PROBLEMS: dict[type[LedgerError], tuple[int, str, str]] = {
    InvalidEventError: (422, "invalid-event", "The event is not valid"),
    VersionConflictError: (409, "version-conflict", "The stream is not at the expected version"),
    StreamRuleError: (409, "stream-rule", "The event breaks a stream rule"),
    EventIdConflictError: (409, "event-id-conflict", "The event_id is taken by other content"),
    StreamNotFoundError: (404, "not-found", "No such stream"),
    EventNotFoundError: (404, "not-found", "No such event"),
    UnavailableError: (503, "unavailable", "The database is unavailable"),
    StreamsBusyError: (503, "streams-busy", "Other writers are appending to these streams"),
    ReadModelBehindError: (503, "read-model-behind", "A read model is behind the ledger"),
    UnknownNameError: (404, "not-found", "No such department or person in the ledger"),
}

HTTP_TITLES = {
    400: ("bad-request", "The request is malformed"),
    401: ("unauthorized", "A valid API key is required"),
    403: ("forbidden", "This key may not do that"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Events are never updated or deleted"),
    413: ("too-large", "The request body is larger than 1 MiB"),
    429: ("rate-limited", "Too many requests"),
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(default=None)


class ProblemResponse(Response):
    media_type = "application/problem+json"

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + slug,
            "title": title,
            "status": status,
            "detail": detail,
        }
        if errors is not None:
            body["errors"] = errors
        super().__init__(orjson.dumps(body), status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem JSON."""

    @app.exception_handler(LedgerError)
    async def ledger_error(_: Request, exc: LedgerError) -> Response:
        status, slug, title = next(
            (PROBLEMS[c] for c in type(exc).__mro__ if c in PROBLEMS),
            (409, "conflict", "Conflict"),
        )
        if isinstance(exc, InvalidEventError):
            errors = [{"field": exc.field, "message": exc.message}]
            return ProblemResponse(status, slug, title, str(exc), errors=errors)
        if isinstance(exc, UnavailableError):
            log.warning("unavailable: %s", exc)
            headers = {"Retry-After": str(exc.retry_after)}
            return ProblemResponse(status, slug, title, exc.detail, headers=headers)
        return ProblemResponse(status, slug, title, str(exc))

    @app.exception_handler(SigningKeyError)
    async def unusable_key(_: Request, exc: SigningKeyError) -> Response:
        log.error("checkpoint signing key: %s", exc)
        detail = "the checkpoint signing key cannot be used; the server's log says why"
        return ProblemResponse(503, "checkpoint-key", "No checkpoint can be signed", detail)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def lost_database(request: Request, exc: Exception) -> Response:
        # The library's errors of a database that is down, locked or out of connections, from
        # any path that did not turn them into UnavailableError itself: 503, never a 500.
        return await ledger_error(request, UnavailableError(str(exc)))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": "body", "message": f"{e['msg']}: {e.get('ctx', {}).get('error', '')}"}
            if e["type"] == "json_invalid"
            else {"field": field_of(e), "message": e["msg"]}
            for e in readable(exc.errors())
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return ProblemResponse(
            422,
            "invalid-request",
            "The request is not valid",
            f"{first['field']}: {first['message']}",
            errors=errors,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        slug, title = HTTP_TITLES.get(exc.status_code, ("error", "Error"))
        headers = dict(exc.headers or {})
        detail = str(exc.detail)
        if exc.status_code == 405:
            # Starlette names only the first route of the path; RFC 9110 wants every method.
            headers["Allow"] = ", ".join(_allowed_methods(request))
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return ProblemResponse(exc.status_code, slug, title, detail, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return ProblemResponse(
            500, "internal", "Internal error", "the error was logged; nothing was half-written"
        )


def _allowed_methods(request: Request) -> list[str]:
    allowed: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.matches(request.scope)[0] != Match.NONE:
            allowed |= route.methods or set()
    return sorted(allowed)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problem statuses a route can answer."""
    titles = {s: t for s, (_, _, t) in ((v[0], v) for v in PROBLEMS.values())}
    titles.update({s: t for s, (_, t) in HTTP_TITLES.items()})
    titles[422] = "The request is not valid"
    titles[503] = "The database is unavailable (see Retry-After)"
    return {
        s: {
            "model": Problem,
            "description": titles.get(s, "Error"),
            "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
        }
        for s in statuses
    }
