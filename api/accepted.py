"""The `202 Accepted` answer every job submission shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


_JOB_ID = {"job_id": "$response.body#/job_id"}


def accepted_doc(*operations: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a submission's 202: the `Location` header, and links from
    the job id to the operations that take it (so tools can follow a job without guessing)."""
    links = {
        "".join(word.title() for word in name.split("_")): {
            "operationId": name,
            "parameters": _JOB_ID,
        }
        for name in ("get_job", "cancel_job", "delete_job", *operations)
    }
    return {
        202: {
            "description": "Recorded and queued; poll the job at `Location`.",
            "headers": {
                "Location": {
                    "description": "The job's URL, `/v1/jobs/{job_id}`.",
                    "schema": {"type": "string"},
                }
            },
            "links": links,
        }
    }


def accepted(job: Job, response: Response) -> JobAccepted:
    """Fill the `Location` header and the body of a 202 for `job`."""
    answer = answer_of(job)
    response.headers["Location"] = answer.status_url
    return answer


def answer_of(job: Job) -> JobAccepted:
    """The body of the 202 that accepted `job` (also what a retry is answered)."""
    status_url = f"/v1/jobs/{job.job_id}"
    return JobAccepted(
        job_id=job.job_id,
        kind=job.kind,
        status=job.status,
        created_at=job.created_at,
        status_url=status_url,
    )
