"""Errors as RFC 9457 problem details (`application/problem+json`), never a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisFullError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
# How long a client should wait before retrying when a backing service is away.
RETRY_AFTER_SECONDS = 5


TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid request",
    429: "Too many requests",
    503: "Service unavailable",
    507: "Insufficient storage",
}


class FieldError(BaseModel):
    """One invalid field: where it is and what is wrong with it."""

    field: str
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem: `title` says what kind, `detail` says what happened here."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


# The answers every endpoint behind an API key may give, for the OpenAPI document.
AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or not a valid one."},
    429: {"model": Problem, "description": "Too many requests with this key; see Retry-After."},
}
ADMIN_PROBLEMS: dict[int | str, dict[str, Any]] = {
    **AUTH_PROBLEMS,
    403: {"model": Problem, "description": "The key's role is `predict`; this needs `admin`."},
}


class ServiceUnavailableError(Exception):
    """A backing service (Redis, the queue, the registry) cannot be reached right now."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def problem_response(
    status: int,
    title: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, **extra)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "rows", 0, "sepal_length")` → `rows[0].sepal_length`."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        if err["type"] == "json_invalid":  # loc holds a character offset, not a field
            field = "body"
            message = f"the body is not valid JSON ({err.get('ctx', {}).get('error', err['msg'])})"
        else:
            field, message = field_path(err.get("loc", ())), err["msg"]
        errors.append(FieldError(field=field, message=message, type=err["type"]))
    return errors


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return problem_response(422, "Invalid request", shown + more, errors=errors)


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = TITLES.get(exc.status_code, "Request refused")
    return problem_response(exc.status_code, title, str(exc.detail), headers=exc.headers)


def _unavailable_detail(exc: Exception) -> str:
    if isinstance(exc, ServiceUnavailableError):
        return exc.detail
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "Redis (the job store and queue) cannot be reached; try again shortly"
    if isinstance(exc, RedisFullError):
        return "Redis (the job store and queue) is full; nothing was accepted, try again later"
    return "the job queue cannot be reached; nothing was queued, try again shortly"


async def _on_unavailable(_: Request, exc: Exception) -> JSONResponse:
    detail = _unavailable_detail(exc)
    logger.warning("503: %s", detail)
    return problem_response(
        503, "Service unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
    )


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error")
    return problem_response(500, "Internal error", "an unexpected error occurred; it was logged")


def install(app: FastAPI) -> None:
    """Register the problem-details handlers on `app`."""
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for unavailable in (
        ServiceUnavailableError,
        RedisConnectionError,
        RedisTimeoutError,
        RedisFullError,
        BrokerError,
    ):
        app.add_exception_handler(unavailable, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
