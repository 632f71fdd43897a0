"""MLflow's scoring protocol: `/invocations`, `/ping`, `/health`, `/version`.

Clients written for `mlflow models serve` work unchanged against irisq: the rows go
through the same queue and micro-batches as `/v1/predictions`, scored by the champion,
and the request is held until the result is there (up to `IRISQ_INVOCATIONS_WAIT_SECONDS`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ValidationError

from api import invocations
from api.auth import CallerDep, UsageDep
from api.bodies import off_the_loop, refuse_too_many_values
from api.deps import SettingsDep
from api.problems import AUTH_PROBLEMS, Problem, field_path
from api.routes.predictions import submit_and_wait
from api.submission import refuse_over_rows_quota
from irisq.jobs import JobStatus
from irisq.schema import CHAMPION, MAX_ROWS, PredictionRequest

router = APIRouter(tags=["mlflow scoring protocol"])
_ROW = {
    "type": "object",
    "properties": {
        name: {"type": "number", "exclusiveMinimum": 0, "maximum": 100}
        for name in ("sepal_length", "sepal_width", "petal_length", "petal_width")
    },
    "required": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
    "additionalProperties": False,
}
_VALUES = {
    "type": "array",
    "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 100},
    "minItems": 4,
    "maxItems": 4,
}
INVOCATION_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["dataframe_records"],
                        "additionalProperties": False,
                        "properties": {
                            "dataframe_records": {
                                "type": "array",
                                "items": _ROW,
                                "minItems": 1,
                                "maxItems": MAX_ROWS,
                            }
                        },
                    },
                    {
                        "type": "object",
                        "required": ["instances"],
                        "additionalProperties": False,
                        "properties": {
                            "instances": {
                                "type": "array",
                                "items": _VALUES,
                                "minItems": 1,
                                "maxItems": MAX_ROWS,
                            }
                        },
                    },
                ]
            },
            "example": {
                "dataframe_split": {
                    "columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                    "data": [[5.1, 3.5, 1.4, 0.2]],
                }
            },
        },
        "text/csv": {
            "schema": {"type": "string"},
            "example": "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n",
        },
    },
}


class Predictions(BaseModel):
    """What `mlflow models serve` answers: one predicted species per row, in order."""

    predictions: list[str]


@router.get("/ping", response_class=PlainTextResponse)
@router.get("/health", response_class=PlainTextResponse)
def ping() -> str:
    """Liveness, as MLflow's scoring server answers it."""
    return "\n"


@router.get("/version", response_class=PlainTextResponse)
def version(request: Request) -> str:
    """The serving software's version (here irisq's: the API does not carry MLflow)."""
    return f"irisq {request.app.version}"


@router.post(
    "/invocations",
    response_model=Predictions,
    openapi_extra={"requestBody": INVOCATION_BODY},
    responses={
        **AUTH_PROBLEMS,
        400: {"model": Problem, "description": "Not a format the scoring protocol defines."},
        413: {"model": Problem},
        415: {"model": Problem},
        422: {"model": Problem, "description": "A row is not a valid flower."},
        503: {"model": Problem, "description": "No champion, or Redis unreachable."},
        504: {"model": Problem, "description": "No result within the wait; poll `Location`."},
    },
)
async def invoke(
    request: Request, settings: SettingsDep, caller: CallerDep, usage: UsageDep
) -> Any:
    """Score rows with the champion and answer `{"predictions": [...]}`, like MLflow."""
    body = await request.body()  # the guard holds it to IRISQ_INVOCATIONS_MAX_BYTES
    content_type = request.headers.get("content-type", "")
    refuse_too_many_values(body)
    refuse_too_many_values(body, b";")  # CSV from European spreadsheets
    rows = await off_the_loop(lambda: _rows(content_type, body), len(body))
    refuse_over_rows_quota(usage, len(rows), settings)
    job, finished = await submit_and_wait(
        request, rows, CHAMPION, caller.name, settings.invocations_wait_seconds
    )
    if not finished:
        raise HTTPException(
            504,
            f"no result within {settings.invocations_wait_seconds:g} s; the job goes on: "
            f"GET /v1/jobs/{job.job_id}",
            {"Location": f"/v1/jobs/{job.job_id}"},
        )
    if job.status is not JobStatus.SUCCEEDED or job.result is None:
        message = job.error.message if job.error else job.status.value
        raise HTTPException(503, f"the prediction did not succeed: {message}")
    species = [prediction["species"] for prediction in job.result["predictions"]]
    return JSONResponse({"predictions": species})


def _rows(content_type: str, body: bytes) -> list[list[float]]:
    """The validated rows of a scoring request (in a thread when the body is large)."""
    try:
        records = invocations.parse(content_type, body)
    except (invocations.TooManyRowsError, invocations.UnusableValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    except invocations.InvocationError as exc:
        status = 415 if str(exc).startswith("unsupported content type") else 400
        raise HTTPException(status, str(exc)) from None
    try:
        parsed = PredictionRequest.model_validate({"rows": records})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise HTTPException(422, f"{field_path(('body', *first['loc']))}: {first['msg']}") from None
    return [row.as_list() for row in parsed.rows]
