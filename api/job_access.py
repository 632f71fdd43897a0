"""Finding a job for a caller: theirs (or any, for an admin), gone (410) or unknown (404)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Path

from api.auth import may_see
from api.problems import Problem
from irisq.job_types import Job
from irisq.keys import Caller
from irisq.results import ResultFiles

if TYPE_CHECKING:  # api.resources builds on api.submission, which reads jobs through here
    from api.resources import Resources

JobId = Path(description="The id returned when the job was submitted.", max_length=64)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such job (or not one this key submitted)."},
    410: {
        "model": Problem,
        "description": "The job existed but its record is gone (expired, or removed to keep "
        "the key within its quota of stored jobs).",
    },
}


def find_job(resources: Resources, job_id: str, caller: Caller) -> Job:
    """The job if this caller may see it; 410 if it is gone, 404 if it is unknown to them."""
    jobs = resources.jobs
    job = jobs.get(job_id)
    if job is not None and may_see(caller, job.owner):
        return with_result(resources.results, job)
    if job is None and _issued_to(resources, job_id, caller):
        raise HTTPException(
            410,
            f"job {job_id!r} is gone (deleted, expired or removed): finished jobs are kept "
            f"{_duration(jobs.ttl_seconds)}, fewer when a key keeps more than its quota of jobs",
        )
    raise HTTPException(404, f"no job with id {job_id!r}")


def _duration(seconds: int) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds:,} s"


def _issued_to(resources: Resources, job_id: str, caller: Caller) -> bool:
    """Whether the id was issued for this caller (any key, for an admin)."""
    ids = resources.job_ids
    if not caller.is_admin:
        return ids.issued_to(job_id, caller.name)
    return ids.owner_among(job_id, [caller.name, None, *resources.keys.names]) is not None


def with_result(results: ResultFiles, job: Job) -> Job:
    """The job with its result read from its file, when it was too large for Redis."""
    if not job.result_in_file:
        return job
    return job.model_copy(update={"result": results.read(job.job_id)})
