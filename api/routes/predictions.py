"""Predictions: submit rows to score; answered at once with the result if asked to wait."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.accepted import JobAccepted, accepted, accepted_doc, answer_of
from api.auth import CallerDep, usage_of
from api.bodies import json_body_doc, json_model
from api.deps import ResourcesDep
from api.idempotency import KeyHeader, KeyUse
from api.problems import AUTH_PROBLEMS, Problem
from api.submission import (
    CallbackQuery,
    checked_callback,
    refuse_over_rows_quota,
    replayed,
    submit_and_wait,
    wait_for_job,
)
from api.waiting import MAX_WAIT_SECONDS, preferred_wait
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


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={
        **AUTH_PROBLEMS,
        **accepted_doc(),
        200: {"model": Job, "description": "The job finished within the requested wait."},
        409: {"model": Problem, "description": "The Idempotency-Key is in use by a request."},
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
    # The busiest route: its settings, idempotency store and the caller's usage are read
    # from `resources` and the request (api.auth.usage_of), not solved as dependencies
    # each (a few percent of the API's CPU per request).
    resources: ResourcesDep,
    wait: WaitQuery = None,
    prefer: PreferHeader = None,
    callback_url: CallbackQuery = None,
    idempotency_key: KeyHeader = None,
) -> Any:
    """Queue 1 to 10,000 rows for scoring; poll the job for the species, or ask to wait."""
    settings, idempotency, usage = resources.settings, resources.idempotency, usage_of(request)
    checked_callback(callback_url, settings, caller)
    from_header = preferred_wait(prefer)
    seconds = wait if wait is not None else from_header
    key = KeyUse(idempotency, caller.name, idempotency_key)
    same = await key.of_body(request, "predictions", {"callback_url": callback_url})
    if (answer := await key.replay(same)) is not None:
        ended = await wait_for_job(resources, answer["job_id"], seconds) if seconds else None
        return replayed(answer, ended)
    try:
        body = await json_model(request, PredictionRequest)
        refuse_over_rows_quota(usage, len(body.rows), settings)
        rows = [row.as_list() for row in body.rows]
        job, finished = await submit_and_wait(
            resources, rows, body.model, caller.name, seconds, callback_url
        )
    except BaseException:
        await key.failed()
        raise
    await key.done(same, answer_of(job).model_dump_json())
    if not finished:
        return accepted(job, response)
    headers = {"Location": f"/v1/jobs/{job.job_id}"}
    if wait is None and from_header is not None:
        headers["Preference-Applied"] = f"wait={prefer_value(from_header)}"
    # pydantic writes the JSON itself (in Rust), with no detour through a dict.
    return Response(job.model_dump_json(), 200, headers, media_type="application/json")


def prefer_value(seconds: float) -> str:
    return str(int(seconds)) if seconds.is_integer() else str(seconds)
