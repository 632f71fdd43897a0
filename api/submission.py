"""Submitting a job: refuse when its queue is full, else record it and send its task."""

from __future__ import annotations

from typing import Any

from celery import Celery
from fastapi import HTTPException

from api.problems import RETRY_AFTER_SECONDS
from irisq.jobs import Job, JobKind, JobStore
from irisq.keys import Caller
from irisq.queueing import queue_depth, submit
from irisq.settings import Settings
from irisq.tasks import TASK_QUEUES


def ensure_room(jobs: JobStore, settings: Settings, task_name: str) -> None:
    """503 while the task's queue holds `max_queue_depth` tasks: accepting more would only
    grow a backlog no one will see answered in time (and fill Redis)."""
    queue = TASK_QUEUES[task_name]
    depth = queue_depth(jobs.redis, queue)
    if depth >= settings.max_queue_depth:
        raise HTTPException(
            503,
            f"the {queue!r} queue is full ({depth} tasks waiting); nothing was queued, "
            "try again shortly",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def enqueue(
    queue: Celery,
    jobs: JobStore,
    settings: Settings,
    caller: Caller,
    kind: JobKind,
    task_name: str,
    args: list[Any],
    job_id: str | None = None,
) -> Job:
    ensure_room(jobs, settings, task_name)
    return submit(queue, jobs, kind, task_name, args, job_id=job_id, owner=caller.name)
