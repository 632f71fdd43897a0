"""Jobs: the status, progress and result of anything that was queued; cancel one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path

from api.auth import CallerDep, may_see
from api.deps import JobStoreDep
from api.problems import AUTH_PROBLEMS, Problem
from irisq.jobs import Job, JobStore
from irisq.keys import Caller

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Path(description="The id returned when the job was submitted.", max_length=64)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such job (or not one this key submitted)."},
    410: {"model": Problem, "description": "The job existed but its record has expired."},
}


def find_job(jobs: JobStore, job_id: str, caller: Caller) -> Job:
    """The job if this caller may see it; 410 if it expired, 404 if it is unknown to them."""
    job = jobs.get(job_id)
    if job is not None and may_see(caller, job.owner):
        return job
    if job is None:
        owner = jobs.expired_owner(job_id)
        if owner is not None and may_see(caller, owner or None):
            days = jobs.ttl_seconds / 86400
            raise HTTPException(
                410,
                f"job {job_id!r} has expired: results are kept {days:g} days after a job "
                "ends, then removed",
            )
    raise HTTPException(404, f"no job with id {job_id!r}")


@router.get("/{job_id}", response_model=Job, responses={**AUTH_PROBLEMS, **NOT_FOUND})
def get_job(jobs: JobStoreDep, caller: CallerDep, job_id: str = JobId) -> Job:
    """The job's status, progress, and its result or error once it has finished."""
    return find_job(jobs, job_id, caller)


@router.delete(
    "/{job_id}",
    response_model=Job,
    responses={
        **AUTH_PROBLEMS,
        **NOT_FOUND,
        409: {"model": Problem, "description": "The job already ended."},
    },
)
def cancel_job(jobs: JobStoreDep, caller: CallerDep, job_id: str = JobId) -> Job:
    """Cancel a queued or running job: it ends `canceled`; a running batch stops within a
    second and leaves no files behind. A finished job cannot be canceled (`409`)."""
    job = find_job(jobs, job_id, caller)
    if not jobs.cancel(job_id, by=caller.name):
        ended = jobs.get(job_id) or job
        raise HTTPException(409, f"job {job_id!r} has already ended: it is {ended.status.value}")
    return jobs.get(job_id) or job
