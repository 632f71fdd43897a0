"""Jobs: list them, read the status, progress and result of one; cancel or delete one."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from api.auth import CallerDep
from api.deps import AsyncRedisDep, CursorsDep, ResourcesDep
from api.job_access import NOT_FOUND, JobId, find_job
from api.listing import CURSOR_MAX_CHARS, CursorError, Filters, JobPage, list_page
from api.problems import AUTH_PROBLEMS, Problem, field_problem
from irisq.job_types import Job, JobKind, JobStatus
from irisq.jobs import ALL_JOBS_INDEX
from irisq.quotas import OwnerKeys

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

OWNER_NAME = r"^[A-Za-z0-9_.@-]{1,64}$"


@router.get(
    "",
    response_model=JobPage,
    responses={
        **AUTH_PROBLEMS,
        200: {
            "headers": {
                "Link": {
                    "description": 'The next page, `<...>; rel="next"` (RFC 8288), if any.',
                    "schema": {"type": "string"},
                }
            }
        },
        422: {"model": Problem},
    },
)
async def list_jobs(
    request: Request,
    response: Response,
    client: AsyncRedisDep,
    cursors: CursorsDep,
    caller: CallerDep,
    kind: JobKind | None = None,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Jobs per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(max_length=CURSOR_MAX_CHARS, description="`next_cursor` of the previous page."),
    ] = None,
    owner: Annotated[
        str | None,
        Query(pattern=OWNER_NAME, description="Admin keys: only this key's jobs."),
    ] = None,
) -> JobPage:
    """This key's jobs (an admin's: everyone's), newest first, without results; follow
    `next_cursor` (or the `Link` header) for older ones. Jobs created meanwhile never shift
    a page. A filter may answer a short page with a `next_cursor`: go on until it is null."""
    if owner is not None and owner != caller.name and not caller.is_admin:
        raise HTTPException(403, f"the key {caller.name!r} may list only its own jobs")
    if caller.is_admin and owner is None:
        index = ALL_JOBS_INDEX
    else:
        index = OwnerKeys(owner or caller.name).jobs
    try:
        after = cursors.decode(cursor) if cursor else None
    except CursorError as exc:
        raise field_problem("cursor", str(exc)) from None
    jobs, position = await list_page(client, index, after, limit, Filters(kind, status))
    next_cursor = cursors.encode(position) if position else None
    if next_cursor:
        query = {k: v for k, v in request.query_params.items() if k != "cursor"}
        query["cursor"] = next_cursor
        response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return JobPage(jobs=jobs, next_cursor=next_cursor)


@router.get(
    "/{job_id}",
    response_model=Job,
    responses={
        **AUTH_PROBLEMS,
        **NOT_FOUND,
        200: {
            "description": "The job. A finished prediction or batch names the model version "
            "that scored it: `GET /v1/models/{version}` has its MLflow run (`run_url`).",
            "links": {
                "GetModelVersion": {
                    "operationId": "get_version",
                    "parameters": {"version": "$response.body#/result/model_version"},
                }
            },
        },
    },
)
def get_job(resources: ResourcesDep, caller: CallerDep, job_id: str = JobId) -> Job:
    """The job's status, progress, and its result or error once it has finished."""
    return find_job(resources, job_id, caller)


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    responses={
        **AUTH_PROBLEMS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "The job already ended."},
    },
)
def cancel_job(resources: ResourcesDep, caller: CallerDep, job_id: str = JobId) -> Job:
    """Cancel a queued or running job: it ends `canceled` and stays readable; a running batch
    stops within a second and leaves no files behind. A finished job cannot be canceled
    (`409`); delete it instead."""
    job = find_job(resources, job_id, caller)
    jobs = resources.jobs
    if not jobs.cancel(job_id, by=caller.name):
        ended = jobs.get(job_id) or job
        raise HTTPException(409, f"job {job_id!r} has already ended: it is {ended.status.value}")
    return jobs.get(job_id) or job


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses={
        **AUTH_PROBLEMS,
        **NOT_FOUND,
        204: {
            "description": "Deleted: the id answers 410 from now on.",
            "links": {
                "GetJob": {
                    "operationId": "get_job",
                    "parameters": {"job_id": "$request.path.job_id"},
                }
            },
        },
    },
)
def delete_job(resources: ResourcesDep, caller: CallerDep, job_id: str = JobId) -> None:
    """Delete the job: its record, its result and its files, at once and for good; a job
    still queued or running is stopped first. Then the id answers `410` to its owner."""
    find_job(resources, job_id, caller)
    resources.jobs.delete(job_id)
    resources.results.delete(job_id)
