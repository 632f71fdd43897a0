"""The exception handlers that answer every error as a problem (api.problems): FastAPI's
validation errors, HTTP errors, a backing service away (503) and the unexpected (500)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from re import Pattern

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisFullError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.problems import (
    RETRY_AFTER_SECONDS,
    TITLES,
    FieldError,
    ServiceUnavailableError,
    problem_response,
    unavailable_detail,
)
from irisq.batch_storage import StorageUnavailableError

# The name these errors were always logged under: log filters keep matching them.
logger = logging.getLogger("api.problems")


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


# Which methods each path answers to: (the route's path pattern, its methods).
MethodIndex = list[tuple[Pattern[str], frozenset[str]]]


def _method_index(routers: Iterable[APIRouter]) -> MethodIndex:
    # From the routers, not `app.routes`: there FastAPI (0.165) keeps an included router's
    # routes behind a private wrapper.
    return [
        (route.path_regex, frozenset(route.methods or ()))
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


def _allowed_methods(index: MethodIndex, path: str) -> str | None:
    """Every method the requested path answers to. Starlette's 405 names only those of the
    first route matching the path, though `GET` and `DELETE /v1/jobs/{id}` are two routes."""
    methods = {method for pattern, allowed in index if pattern.match(path) for method in allowed}
    return ", ".join(sorted(methods)) or None


async def _on_http_error(request: Request, exc: Exception, index: MethodIndex) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if (unreadable := _unreadable_json(exc, request.url.path)) is not None:
        return unreadable
    headers = dict(exc.headers or {})
    path = request.scope.get("path", "")
    if exc.status_code == 405 and (allowed := _allowed_methods(index, path)):
        headers["Allow"] = allowed
    title = TITLES.get(exc.status_code, "Request refused")
    return problem_response(
        exc.status_code, title, str(exc.detail), headers=headers or None, path=request.url.path
    )


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    detail = unavailable_detail(exc)
    logger.warning("503: %s", exc if isinstance(exc, StorageUnavailableError) else detail)
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


def install(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Register the problem-details handlers on `app`, which serves `routers` (a 405 names
    the methods of their routes that match)."""
    index = _method_index(routers)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        return await _on_http_error(request, exc, index)

    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    for unavailable in (
        ServiceUnavailableError,
        RedisConnectionError,
        RedisTimeoutError,
        RedisFullError,
        BrokerError,
        StorageUnavailableError,
    ):
        app.add_exception_handler(unavailable, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)
