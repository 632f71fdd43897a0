"""MLflow's scoring protocol: `/invocations`, `/ping`, `/health`, `/version`, and the
deployments client's `/endpoints/{name}/invocations`.

Clients written for `mlflow models serve` work unchanged: the rows go through the same
queue and micro-batches as `/v1/predictions`, scored by the champion, and the request is held
until the result is there (up to `IRISQ_INVOCATIONS_WAIT_SECONDS`). A body larger than one
prediction job (10,000 rows) becomes several jobs, scored side by side by every predict
worker and answered together. Errors are problem details that also carry MLflow's
`error_code` and `message` (api.problems).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from api import invocations
from api.auth import CallerDep, UsageDep
from api.bodies import off_the_loop, refuse_too_many_values
from api.deps import ReadinessDep, ResourcesDep
from api.invocation_schema import INVOCATION_BODY
from api.problems import AUTH_PROBLEMS, RETRY_AFTER_SECONDS, Problem
from api.ratelimit import Usage
from api.resources import Resources
from api.submission import refuse_over_rows_quota, submit_and_wait
from irisq.job_types import Job, JobStatus, PredictionResult
from irisq.schema import CHAMPION, MAX_ROWS, MLFLOW_PROTOCOL_VERSION

router = APIRouter(tags=["mlflow scoring protocol"])


class Predictions(BaseModel):
    """What `mlflow models serve` answers: one predicted species per row, in order."""

    predictions: list[str]


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "Nothing can be scored now; see /readyz."}
}


@router.get("/ping", response_class=PlainTextResponse, responses=NOT_READY)
async def ping(probe: ReadinessDep) -> str:
    """Whether a prediction can be served now, as MLflow's `/ping` says once its model is
    loaded: 200 only when Redis, a predict worker and a champion are there (`/readyz` says
    which part is missing; `/healthz` is the process's liveness)."""
    readiness = await probe.current()
    if not readiness.ready:
        missing = "; ".join(
            f"{name}: {readiness.checks[name].detail}" for name in readiness.missing
        )
        raise HTTPException(
            503,
            f"nothing can be scored now ({missing}); see /readyz",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return "\n"


@router.get("/health", response_class=PlainTextResponse, responses=NOT_READY)
async def health(probe: ReadinessDep) -> str:
    """The same as `/ping` (MLflow answers both)."""
    return await ping(probe)


@router.get("/version", response_class=PlainTextResponse)
def version() -> str:
    """The MLflow version whose scoring protocol this server speaks, as MLflow's `/version`
    answers (a plain version number; irisq's own is in `/openapi.json`)."""
    return MLFLOW_PROTOCOL_VERSION


SCORING_RESPONSES: dict[int | str, dict[str, Any]] = {
    **AUTH_PROBLEMS,
    400: {"model": Problem, "description": "Not a format the scoring protocol defines."},
    413: {"model": Problem},
    415: {"model": Problem},
    422: {"model": Problem, "description": "A row is not a valid flower."},
    503: {"model": Problem, "description": "No champion, or Redis unreachable."},
    504: {"model": Problem, "description": "No result within the wait; poll `Location`."},
}


@router.post(
    "/invocations",
    response_model=Predictions,
    openapi_extra={"requestBody": INVOCATION_BODY},
    responses=SCORING_RESPONSES,
)
async def invoke(
    request: Request, resources: ResourcesDep, caller: CallerDep, usage: UsageDep
) -> Any:
    """Score rows with the champion and answer `{"predictions": [...]}`, like MLflow."""
    return await _score(request, resources, caller.name, usage)


@router.post(
    "/endpoints/{endpoint}/invocations",
    response_model=Predictions,
    openapi_extra={"requestBody": INVOCATION_BODY},
    responses={**SCORING_RESPONSES, 404: {"model": Problem, "description": "No such endpoint."}},
)
async def invoke_endpoint(
    request: Request,
    resources: ResourcesDep,
    caller: CallerDep,
    usage: UsageDep,
    endpoint: Annotated[str, PathParam(max_length=256, description="The registered model's name.")],
) -> Any:
    """`/invocations` under the path MLflow's deployments client calls
    (`get_deploy_client(url).predict(endpoint=<model name>, inputs=...)`), which sends the
    key from `MLFLOW_TRACKING_TOKEN`."""
    model_name = resources.settings.model_name
    if endpoint != model_name:
        raise HTTPException(404, f"no endpoint {endpoint!r}: this server scores {model_name!r}")
    return await _score(request, resources, caller.name, usage)


async def _score(request: Request, resources: Resources, owner: str, usage: Usage) -> Response:
    settings = resources.settings
    body = await request.body()  # the guard holds it to IRISQ_INVOCATIONS_MAX_BYTES
    content_type = request.headers.get("content-type", "")
    max_rows = settings.invocations_max_rows
    refuse_too_many_values(body, max_rows)
    refuse_too_many_values(body, max_rows, b";")  # CSV from European spreadsheets
    rows = await off_the_loop(lambda: _rows(content_type, body, max_rows), len(body))
    refuse_over_rows_quota(usage, len(rows), settings)
    wait = settings.invocations_wait_seconds
    # One prediction job per 10,000 rows, sent at once: the predict workers share them.
    chunks = [rows[start : start + MAX_ROWS] for start in range(0, len(rows), MAX_ROWS)]
    outcomes = await asyncio.gather(
        *(
            submit_and_wait(resources, chunk, CHAMPION, owner, wait, read_result_file=False)
            for chunk in chunks
        )
    )
    late = [job for job, finished in outcomes if not finished]
    if late:
        raise HTTPException(
            504,
            f"no result within {wait:g} s; {len(late)} of {len(chunks)} jobs go on: "
            f"GET /v1/jobs/{late[0].job_id}",
            {"Location": f"/v1/jobs/{late[0].job_id}"},
        )
    species: list[str] = []
    for (job, _), chunk in zip(outcomes, chunks, strict=True):
        species.extend(await _species(job, resources, len(chunk)))
    return JSONResponse({"predictions": species})


async def _species(job: Job, resources: Resources, rows: int) -> list[str]:
    """The species of a finished job's rows, read from its result file if it has one (only
    the species: off the loop, and a third of the whole result's validation)."""
    found: list[str] | None = None
    if job.status is JobStatus.SUCCEEDED and job.result_in_file:
        found = await run_in_threadpool(resources.results.species, job.job_id, rows)
    elif job.status is JobStatus.SUCCEEDED and isinstance(job.result, PredictionResult):
        found = [prediction.species for prediction in job.result.predictions]
    if found is None:
        if job.status is JobStatus.SUCCEEDED:
            message = "its result is gone"
        else:
            message = job.error.message if job.error else job.status.value
        raise HTTPException(
            503,
            f"the prediction did not succeed: {message}",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return found


def _rows(content_type: str, body: bytes, max_rows: int) -> list[list[float]]:
    """The validated rows of a scoring request (in a thread when the body is large)."""
    try:
        return invocations.parse(content_type, body, max_rows)
    except invocations.UnsupportedMediaError as exc:
        raise HTTPException(415, str(exc)) from None
    except invocations.TooManyRowsError as exc:
        raise HTTPException(413, str(exc)) from None
    except invocations.InvalidRowError as exc:
        raise HTTPException(422, str(exc)) from None
    except invocations.InvocationError as exc:
        raise HTTPException(400, str(exc)) from None
