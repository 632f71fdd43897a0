"""Jobs: the status, progress and result of anything that was queued; cancel one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from api.auth import CallerDep, may_see
from api.deps import JobStoreDep
from api.problems import AUTH_PROBLEMS, Problem
from irisq.ids import JobIds
from irisq.job_types import Job
from irisq.jobs import JobStore
from irisq.keys import Caller, KeyRing
from irisq.results import ResultFiles

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Path(description="The id returned when the job was submitted.", max_length=64)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such job (or not one this key submitted)."},
    410: {
        "model": Problem,
        "description": "The job existed but its record is gone (expired, or removed to keep "
        "the key within its quota of stored jobs).",
    },
}


def find_job(request: Request, jobs: JobStore, job_id: str, caller: Caller) -> Job:
    """The job if this caller may see it; 410 if it is gone, 404 if it is unknown to them."""
    job = jobs.get(job_id)
    if job is not None and may_see(caller, job.owner):
        return with_result(request, job)
    if job is None and _issued_to(request, job_id, caller):
        raise HTTPException(
            410,
            f"job {job_id!r} is gone (deleted, expired or removed): finished jobs are kept "
            f"{_duration(jobs.ttl_seconds)}, fewer when a key keeps more than its quota of jobs",
        )
    raise HTTPException(404, f"no job with id {job_id!r}")


def _duration(seconds: int) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds:,} s"


def _issued_to(request: Request, job_id: str, caller: Caller) -> bool:
    """Whether the id was issued for this caller (any key, for an admin)."""
    ids: JobIds = request.app.state.job_ids
    if not caller.is_admin:
        return ids.issued_to(job_id, caller.name)
    keys: KeyRing = request.app.state.keys
    return ids.owner_among(job_id, [caller.name, None, *keys.names]) is not None


def with_result(request: Request, job: Job) -> Job:
    """The job with its result read from its file, when it was too large for Redis."""
    if not job.result_in_file:
        return job
    results: ResultFiles = request.app.state.results
    return job.model_copy(update={"result": results.read(job.job_id)})


@router.get("/{job_id}", response_model=Job, responses={**AUTH_PROBLEMS, **NOT_FOUND})
def get_job(request: Request, jobs: JobStoreDep, caller: CallerDep, job_id: str = JobId) -> Job:
    """The job's status, progress, and its result or error once it has finished."""
    return find_job(request, jobs, job_id, caller)


@router.post(
    "/{job_id}/cancel",
    response_model=Job,
    responses={
        **AUTH_PROBLEMS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "The job already ended."},
    },
)
def cancel_job(request: Request, jobs: JobStoreDep, caller: CallerDep, job_id: str = JobId) -> Job:
    """Cancel a queued or running job: it ends `canceled` and stays readable; a running batch
    stops within a second and leaves no files behind. A finished job cannot be canceled
    (`409`); delete it instead."""
    job = find_job(request, jobs, job_id, caller)
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
def delete_job(request: Request, jobs: JobStoreDep, caller: CallerDep, job_id: str = JobId) -> None:
    """Delete the job: its record, its result and its files, at once and for good; a job
    still queued or running is stopped first. Then the id answers `410` to its owner."""
    find_job(request, jobs, job_id, caller)
    jobs.delete(job_id)
    results: ResultFiles = request.app.state.results
    results.delete(job_id)
