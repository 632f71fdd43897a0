"""Reading JSON and CSV bodies without letting one request take the event loop.

The guard (api.guard) has already bounded the body's size. Here its work is bounded too,
before any parsing: a body may hold at most `MAX_VALUES` values (counted as separators, in
C, at memory speed), so no one pays for decoding millions of numbers to learn that a
request is too large. Bodies past `OFF_LOOP_BYTES` are then parsed and validated in a
thread, one at a time per process, so the event loop (every other request) goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
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
VALUES_PER_ROW = 10
MAX_VALUES = MAX_ROWS * VALUES_PER_ROW
# Measured: pydantic validates a 64 KB body (~650 rows) in about 1 ms; beyond it, a thread.
OFF_LOOP_BYTES = 64 * 1024
_parsing = anyio.CapacityLimiter(1)  # one large parse at a time: the GIL is shared anyway

# The models whose schemas the OpenAPI document must carry for `json_body_doc` references.
DOCUMENTED: list[type[BaseModel]] = []


def refuse_too_many_values(body: bytes, max_rows: int = MAX_ROWS, separators: bytes = b",") -> None:
    """413 when the body holds more values than a request of `max_rows` rows could."""
    if body.count(separators) > max_rows * VALUES_PER_ROW:
        raise HTTPException(
            413,
            f"the body holds more than {max_rows * VALUES_PER_ROW:,} values; at most "
            f"{max_rows:,} rows are accepted in one request",
        )


async def off_the_loop(work: Callable[[], T], size: int) -> T:
    """`work()` here if the body is small, else in a thread (one at a time)."""
    if size <= OFF_LOOP_BYTES:
        return work()
    return await anyio.to_thread.run_sync(work, limiter=_parsing)


async def json_model(request: Request, model: type[M], union_tags: Collection[str] = ()) -> M:
    """The body validated as `model`; 422 (FastAPI's body errors) when it is not.

    `union_tags`: the tags of a discriminated union at the body's top (a training's
    algorithms), which pydantic puts first in an error's location and `params.C` must not
    read as `svc.params.C`."""
    body = await request.body()
    refuse_too_many_values(body)

    def validate() -> M:
        return model.model_validate_json(body)

    try:
        return await off_the_loop(validate, len(body))
    except ValidationError as exc:
        raise RequestValidationError(body_errors(exc, union_tags)) from None


def body_errors(exc: ValidationError, union_tags: Collection[str] = ()) -> list[dict[str, Any]]:
    """pydantic's errors as FastAPI reports a body's: located under `body`."""
    errors = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error["loc"])
        if loc and loc[0] in union_tags:
            loc = loc[1:]
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, str(error.get("ctx", {}).get("discriminator", "")).strip("'"))
        errors.append({**error, "loc": ("body", *loc)})
    return errors


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
