"""Reading JSON and CSV bodies without letting one request take the event loop.

The guard (api.guard) has already bounded the body's size. Here its work is bounded too,
before any parsing: a body may hold at most `MAX_VALUES` values (counted as separators, in
C, at memory speed), so no one pays for decoding millions of numbers to learn that a
request is too large. Bodies past `OFF_LOOP_BYTES` are then parsed and validated in a
thread, one at a time per process, so the event loop (every other request) goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from irisq.schema import MAX_ROWS

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

# A row is four measurements, perhaps with a label or an id: ten values a row on average is
# generous, and caps what decoding can cost (a 16 MB body of bare numbers holds 3 million).
MAX_VALUES = MAX_ROWS * 10
# Measured: pydantic validates a 64 KB body (~650 rows) in about 1 ms; beyond it, a thread.
OFF_LOOP_BYTES = 64 * 1024
_parsing = anyio.CapacityLimiter(1)  # one large parse at a time: the GIL is shared anyway

# The models whose schemas the OpenAPI document must carry for `json_body_doc` references.
DOCUMENTED: list[type[BaseModel]] = []


def refuse_too_many_values(body: bytes, separators: bytes = b",") -> None:
    """413 when the body holds more values than any accepted request could."""
    if body.count(separators) > MAX_VALUES:
        raise HTTPException(
            413,
            f"the body holds more than {MAX_VALUES:,} values; at most {MAX_ROWS:,} rows are "
            "accepted in one request",
        )


async def off_the_loop(work: Callable[[], T], size: int) -> T:
    """`work()` here if the body is small, else in a thread (one at a time)."""
    if size <= OFF_LOOP_BYTES:
        return work()
    return await anyio.to_thread.run_sync(work, limiter=_parsing)


async def json_model(request: Request, model: type[M]) -> M:
    """The body validated as `model`; 422 (FastAPI's body errors) when it is not."""
    body = await request.body()
    refuse_too_many_values(body)

    def validate() -> M:
        return model.model_validate_json(body)

    try:
        return await off_the_loop(validate, len(body))
    except ValidationError as exc:
        raise RequestValidationError(body_errors(exc)) from None


def body_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI reports a body's: located under `body`."""
    return [
        {**error, "loc": ("body", *error["loc"])}
        for error in exc.errors(include_url=False, include_input=False)
    ]


def json_body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that reads `model` with `json_model`."""
    if model not in DOCUMENTED:
        DOCUMENTED.append(model)
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }


def add_documented_schemas(document: dict[str, Any]) -> None:
    """Put the schemas of `DOCUMENTED` models (and what they use) into `document`."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in DOCUMENTED:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
