"""Predictions: submit rows to score; answered at once with the result if asked to wait."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from api.accepted import JobAccepted, accepted, accepted_doc
from api.auth import CallerDep, UsageDep
from api.batching import MicroBatcher, Pending
from api.bodies import json_body_doc, json_model
from api.deps import SettingsDep
from api.problems import AUTH_PROBLEMS, Problem
from api.routes.jobs import with_result
from api.submission import refuse_over_rows_quota
from api.waiting import MAX_WAIT_SECONDS, JobWaiter, preferred_wait
from irisq.ids import JobIds
from irisq.job_types import Job
from irisq.schema import PredictionRequest

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])

WaitQuery = Annotated[
    float | None,
    Query(
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds to wait for the result: `200` with the finished job if it ends "
        "in time, else `202` as without it. Same as the header `Prefer: wait=<seconds>`.",
    ),
]
PreferHeader = Annotated[
    str | None, Header(description="RFC 7240, e.g. `wait=2`; `?wait=` wins if both are given.")
]


async def submit_and_wait(
    request: Request,
    rows: list[list[float]],
    model: str,
    owner: str,
    wait: float | None,
) -> tuple[Job, bool]:
    """Queue one prediction job through the micro-batcher; wait for it if asked.

    Returns the job (finished if `wait` allowed) and whether it finished."""
    batcher: MicroBatcher = request.app.state.batcher
    waiter: JobWaiter = request.app.state.waiter
    ids: JobIds = request.app.state.job_ids
    pending = Pending(ids.new(owner), rows, model, owner)
    ended = waiter.expect(pending.job_id) if wait else None
    try:
        job = await batcher.submit(pending)
    except BaseException:
        if ended is not None:
            waiter.forget(pending.job_id, ended)
        raise
    if ended is None or wait is None:
        return job, False
    finished = await waiter.wait(pending.job_id, ended, wait)
    if finished is None:
        return job, False
    if finished.result_in_file:  # a large result: read off the loop
        finished = await run_in_threadpool(with_result, request, finished)
    return finished, True


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={
        **AUTH_PROBLEMS,
        **accepted_doc(),
        200: {"model": Job, "description": "The job finished within the requested wait."},
        413: {"model": Problem},
        422: {"model": Problem},
        503: {"model": Problem},
    },
    openapi_extra={"requestBody": json_body_doc(PredictionRequest)},
)
async def create_prediction(
    request: Request,
    response: Response,
    caller: CallerDep,
    usage: UsageDep,
    settings: SettingsDep,
    wait: WaitQuery = None,
    prefer: PreferHeader = None,
) -> Any:
    """Queue 1 to 10,000 rows for scoring; poll the job for the species, or ask to wait."""
    body = await json_model(request, PredictionRequest)
    refuse_over_rows_quota(usage, len(body.rows), settings)
    from_header = preferred_wait(prefer)
    seconds = wait if wait is not None else from_header
    rows = [row.as_list() for row in body.rows]
    job, finished = await submit_and_wait(request, rows, body.model, caller.name, seconds)
    if not finished:
        return accepted(job, response)
    headers = {"Location": f"/v1/jobs/{job.job_id}"}
    if wait is None and from_header is not None:
        headers["Preference-Applied"] = f"wait={prefer_value(from_header)}"
    # pydantic writes the JSON itself (in Rust), with no detour through a dict.
    return Response(job.model_dump_json(), 200, headers, media_type="application/json")


def prefer_value(seconds: float) -> str:
    return str(int(seconds)) if seconds.is_integer() else str(seconds)
