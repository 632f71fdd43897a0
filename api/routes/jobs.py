"""Jobs: the status, progress and result of anything that was queued."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path

from api.deps import JobStoreDep
from api.problems import Problem
from irisq.jobs import Job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

JobId = Path(description="The id returned when the job was submitted.", max_length=64)


@router.get("/{job_id}", response_model=Job, responses={404: {"model": Problem}})
def get_job(jobs: JobStoreDep, job_id: str = JobId) -> Job:
    """The job's status, progress, and its result or error once it has finished."""
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(
            404, f"no job with id {job_id!r}: it never existed, or it expired and was removed"
        )
    return job
