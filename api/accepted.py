"""The `202 Accepted` answer every job submission shares."""

from __future__ import annotations

from datetime import datetime

from fastapi import Response
from pydantic import BaseModel

from irisq.job_types import Job, JobKind, JobStatus


class JobAccepted(BaseModel):
    """A job was recorded and queued; poll `status_url` (also the `Location` header)."""

    job_id: str
    kind: JobKind
    status: JobStatus
    created_at: datetime
    status_url: str


def accepted(job: Job, response: Response) -> JobAccepted:
    """Fill the `Location` header and the body of a 202 for `job`."""
    status_url = f"/v1/jobs/{job.job_id}"
    response.headers["Location"] = status_url
    return JobAccepted(
        job_id=job.job_id,
        kind=job.kind,
        status=job.status,
        created_at=job.created_at,
        status_url=status_url,
    )
