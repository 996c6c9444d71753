"""Errors as the API's wire format: ``application/problem+json`` (RFC 9457).

Every error hpcbridge raises on purpose maps to one status and one problem type; the
detail is the error's message and its hint (what to do). Authentication failures get one
fixed body, whatever the cause, so that a caller learns nothing about which it was.
"""

from __future__ import annotations

import math
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hpcbridge.errors import (
    AuthenticationError,
    BackendError,
    ConfigError,
    ConflictError,
    ForbiddenError,
    HpcbridgeError,
    IdempotencyConflictError,
    InvalidRequestError,
    InvalidTransitionError,
    NotFoundError,
    QuotaExceededError,
    SpecError,
    StoreError,
)

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("hpcbridge.api")

# (error class, HTTP status, problem slug), the most specific first.
_MAPPING: tuple[tuple[type[HpcbridgeError], int, str], ...] = (
    (AuthenticationError, 401, "unauthenticated"),
    (ForbiddenError, 403, "forbidden"),
    (NotFoundError, 404, "not-found"),
    (IdempotencyConflictError, 409, "idempotency-conflict"),
    (ConflictError, 409, "conflict"),
    (InvalidTransitionError, 409, "invalid-state"),
    (QuotaExceededError, 429, "quota-exceeded"),
    (SpecError, 422, "invalid-spec"),
    (InvalidRequestError, 400, "invalid-request"),
    (ConfigError, 400, "invalid-request"),
    (BackendError, 503, "scheduler-unavailable"),
    (StoreError, 503, "store-unavailable"),
)
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(BaseModel):
    """An error: ``type`` names the kind, ``detail`` the problem and the fix."""

    type: str
    title: str
    status: int
    detail: str
    problems: list[str] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}}
    for status in (400, 401, 403, 404, 409, 422, 429, 503)
}
"""The errors every ``/api/v1`` route may answer, for the OpenAPI document."""


def problem_type(slug: str) -> str:
    return f"urn:hpcbridge:problem:{slug}"


def problem(
    status: int,
    slug: str,
    detail: str,
    *,
    problems: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=problem_type(slug),
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        problems=problems,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


UNAUTHENTICATED_DETAIL = AuthenticationError.MESSAGE + "; send 'Authorization: Bearer TOKEN'"


def unauthenticated() -> JSONResponse:
    """The one answer to every authentication failure."""
    return problem(
        401,
        "unauthenticated",
        UNAUTHENTICATED_DETAIL,
        headers={"WWW-Authenticate": 'Bearer realm="hpcbridge"'},
    )


def from_error(error: HpcbridgeError) -> JSONResponse:
    if isinstance(error, AuthenticationError):
        return unauthenticated()
    status, slug = 400, "invalid-request"
    for cls, mapped_status, mapped_slug in _MAPPING:
        if isinstance(error, cls):
            status, slug = mapped_status, mapped_slug
            break
    detail = error.message if error.hint is None else f"{error.message}; {error.hint}"
    headers = None
    if isinstance(error, QuotaExceededError):
        headers = {"Retry-After": str(max(1, math.ceil(error.retry_after_s)))}
    problems = error.problems if isinstance(error, SpecError) and error.problems else None
    return problem(status, slug, detail, problems=problems, headers=headers)


def _validation_lines(errors: Any) -> list[str]:
    lines = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        lines.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return lines


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    async def on_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HpcbridgeError)
        return from_error(exc)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        lines = _validation_lines(exc.errors())
        return problem(
            422,
            "invalid-request",
            "the request is invalid: " + "; ".join(lines) + "; see /api/v1/openapi.json",
            problems=lines,
        )

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = "no such route; the API is described at /api/v1/openapi.json"
        return problem(exc.status_code, slug, detail, headers=dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request_failed", path=request.url.path, exc_info=exc)
        return problem(
            500, "internal", "the server failed on this request; its log says why, retry later"
        )

    app.add_exception_handler(HpcbridgeError, on_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
