"""Errors as RFC 9457 problem details (`application/problem+json`), never a bare 500.

The model and how to make one; api.error_handlers answers every exception with one, and
api.openapi_doc documents them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisFullError
from redis.exceptions import TimeoutError as RedisTimeoutError

from irisq.batch_storage import StorageUnavailableError

PROBLEM_JSON = "application/problem+json"
# How long a client should wait before retrying when a backing service is away.
RETRY_AFTER_SECONDS = 5


TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
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
    error_id: str | None = Field(
        None, description="For a 500: the id under which the details were logged."
    )
    error_code: str | None = Field(
        None,
        description="On MLflow's scoring routes: MLflow's error code for this status "
        "(`BAD_REQUEST`, `INVALID_PARAMETER_VALUE`, ...), as `mlflow models serve` sends it.",
    )
    message: str | None = Field(
        None, description="On MLflow's scoring routes: `detail` again, where MLflow puts it."
    )


# What MLflow's scoring server calls each status (mlflow.exceptions), for its clients.
MLFLOW_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    409: "RESOURCE_CONFLICT",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_SCORING_PATH = re.compile(r"/invocations|/endpoints/[^/]+/invocations")


def is_scoring_path(path: str) -> bool:
    """`/invocations` and the deployments client's `/endpoints/{name}/invocations`."""
    return _SCORING_PATH.fullmatch(path) is not None


def mlflow_members(path: str, status: int, detail: str) -> dict[str, str]:
    """The members MLflow's clients read from an error (`error_code`, `message`), on its
    scoring routes; none elsewhere."""
    if not is_scoring_path(path):
        return {}
    code = MLFLOW_ERROR_CODES.get(status, "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR")
    return {"error_code": code, "message": detail}


# The answers every endpoint behind an API key may give, for the OpenAPI document.
AUTH_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "No API key, or not a valid one."},
    429: {"model": Problem, "description": "Too many requests with this key; see Retry-After."},
    # Every key check counts the request in Redis, so Redis being away answers 503 anywhere.
    503: {"model": Problem, "description": "A backing service is away; see Retry-After."},
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
    path: str = "",
    **extra: Any,
) -> JSONResponse:
    """`path`: the request's, for MLflow's members on its scoring routes."""
    extra.update(mlflow_members(path, status, detail))
    body = Problem(title=title, status=status, detail=detail, **extra)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_bytes(status: int, detail: str, path: str = "") -> bytes:
    """A problem document as bytes, for the layers that answer below FastAPI (api.guard)."""
    title = TITLES.get(status, "Request refused")
    return (
        Problem(title=title, status=status, detail=detail, **mlflow_members(path, status, detail))
        .model_dump_json(exclude_none=True)
        .encode()
    )


def field_problem(field: str, message: str, location: str = "query") -> RequestValidationError:
    """A 422 naming `field` (a query parameter, or a header with `location="header"`), for
    checks a route makes itself; answered like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (location, field), "msg": message, "input": None}]
    )


def unavailable_detail(exc: Exception) -> str:
    if isinstance(exc, ServiceUnavailableError):
        return exc.detail
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "Redis (the job store and queue) cannot be reached; try again shortly"
    if isinstance(exc, RedisFullError):
        return "Redis (the job store and queue) is full; nothing was accepted, try again later"
    if isinstance(exc, StorageUnavailableError):  # its own text names hosts: logged only
        return "the batch storage cannot be reached; nothing was stored, try again shortly"
    return "the job queue cannot be reached; nothing was queued, try again shortly"
