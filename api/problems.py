"""Errors as RFC 9457 problem details (`application/problem+json`), never a bare 500."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from re import Pattern
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel, Field
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisFullError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
# FastAPI documents its own 422 body for every operation with parameters; ours replaces it.
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
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


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "rows", 0, "sepal_length")` → `rows[0].sepal_length`."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def field_problem(field: str, message: str, location: str = "query") -> RequestValidationError:
    """A 422 naming `field` (a query parameter, or a header with `location="header"`), for
    checks a route makes itself; answered like FastAPI's own validation errors."""
    return RequestValidationError(
        [{"type": "value_error", "loc": (location, field), "msg": message, "input": None}]
    )


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        if err["type"] == "json_invalid":  # loc holds a character offset, not a field
            field, why = "body", err.get("ctx", {}).get("error", err["msg"])
            message = (
                f"a number in the body is out of range ({why})"
                if "out of range" in why
                else f"the body is not valid JSON ({why})"
            )
        else:
            field, message = field_path(err.get("loc", ())), err["msg"]
        errors.append(FieldError(field=field, message=message, type=err["type"]))
    return errors


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return problem_response(
        422, "Invalid request", shown + more, path=request.url.path, errors=errors
    )


# What FastAPI's JSON body reading raises besides a syntax error, as its 400 names no cause.
_UNREADABLE_JSON = {
    UnicodeDecodeError: "it is not UTF-8 text",
    RecursionError: "it is nested too deeply",
}


def _unreadable_json(exc: StarletteHTTPException, path: str) -> JSONResponse | None:
    """FastAPI answers a JSON body it cannot decode (not UTF-8, nested too deeply) with a
    bare 400, while a syntax error is a 422 naming the body: make both the same 422."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    why = next((why for kind, why in _UNREADABLE_JSON.items() if isinstance(cause, kind)), None)
    if why is None:
        return None
    error = FieldError(
        field="body", message=f"the body is not valid JSON ({why})", type="json_invalid"
    )
    return problem_response(
        422, "Invalid request", f"{error.field}: {error.message}", path=path, errors=[error]
    )


def index_methods(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Remember which methods each path answers to, for the `Allow` header of a 405."""
    app.state.route_methods = [
        (route.path_regex, frozenset(route.methods or ()))
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


def _allowed_methods(request: Request) -> str | None:
    """Every method the requested path answers to. Starlette's 405 names only those of the
    first route matching the path, though `GET` and `DELETE /v1/jobs/{id}` are two routes."""
    index: list[tuple[Pattern[str], frozenset[str]]] = getattr(
        request.app.state, "route_methods", []
    )
    path = request.scope.get("path", "")
    methods = {method for pattern, allowed in index if pattern.match(path) for method in allowed}
    return ", ".join(sorted(methods)) or None


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if (unreadable := _unreadable_json(exc, request.url.path)) is not None:
        return unreadable
    headers = dict(exc.headers or {})
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    title = TITLES.get(exc.status_code, "Request refused")
    return problem_response(
        exc.status_code, title, str(exc.detail), headers=headers or None, path=request.url.path
    )


def unavailable_detail(exc: Exception) -> str:
    if isinstance(exc, ServiceUnavailableError):
        return exc.detail
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "Redis (the job store and queue) cannot be reached; try again shortly"
    if isinstance(exc, RedisFullError):
        return "Redis (the job store and queue) is full; nothing was accepted, try again later"
    return "the job queue cannot be reached; nothing was queued, try again shortly"


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    detail = unavailable_detail(exc)
    logger.warning("503: %s", detail)
    return problem_response(
        503,
        "Service unavailable",
        detail,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        path=request.url.path,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The details stay in the log: an exception's text can name hosts, paths or secrets.
    error_id = uuid.uuid4().hex[:12]
    logger.exception("unexpected error %s", error_id)
    return problem_response(
        500,
        "Internal error",
        f"an unexpected error occurred; it was logged as error {error_id}",
        path=request.url.path,
        error_id=error_id,
    )


def _as_problem_json(document: dict[str, Any]) -> dict[str, Any]:
    """Document every problem answer as what it is on the wire: `application/problem+json`
    with the `Problem` schema. FastAPI puts a `responses=` model under `application/json`,
    and adds its own `HTTPValidationError` 422, which the handler above never sends.
    Idempotent: it rewrites `document` in place and may run on it again."""
    replaced = {PROBLEM_REF, *(f"#/components/schemas/{n}" for n in FASTAPI_VALIDATION_SCHEMAS)}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            for answer in operation.get("responses", {}).values():
                content = answer.get("content", {})
                # Under whatever media type FastAPI filed it (a plain-text route's 503 goes
                # under text/plain): a problem is always sent as problem+json.
                for media, described in list(content.items()):
                    if described.get("schema", {}).get("$ref") in replaced:
                        del content[media]
                        content[PROBLEM_JSON] = {"schema": {"$ref": PROBLEM_REF}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    if "Problem" not in schemas:
        problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem.pop("$defs", {}), Problem=problem)
    return document


def _optional_auth(document: dict[str, Any]) -> dict[str, Any]:
    """An open API (no keys configured) takes no key: say so, with an empty requirement."""
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            security = operation.get("security") if isinstance(operation, dict) else None
            if security and {} not in security:
                security.append({})
    return document


def document(
    app: FastAPI, open_api: bool, extra: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Make `/openapi.json` describe what this app really answers (`extra` adds to it)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        if extra is not None:
            extra(document)
        described = _as_problem_json(document)
        return _optional_auth(described) if open_api else described

    app.openapi = openapi  # type: ignore[method-assign]


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
