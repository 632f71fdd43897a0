"""Submitting a job: refuse when its queue is full, else record it and send its task."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from fastapi import HTTPException

from api.batching import Pending
from api.problems import RETRY_AFTER_SECONDS
from irisq.jobs import Job, JobKind, JobStore, new_job_id
from irisq.keys import Caller
from irisq.queueing import queue_depth, send, submit, task_message
from irisq.settings import Settings
from irisq.tasks import PREDICT_GROUP_TASK, PREDICT_TASK, TASK_QUEUES

logger = logging.getLogger("irisq.jobs")


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


def send_group(
    queue: Celery, jobs: JobStore, settings: Settings, group: list[Pending]
) -> dict[str, Job]:
    """Record every prediction of a micro-batch (one round trip) and send one task for all.

    Each record keeps its own single-job task, which is what the reconciler re-sends if
    the group's task is lost.
    """
    ensure_room(jobs, settings, PREDICT_TASK)
    tasks = {p.job_id: task_message(PREDICT_TASK, p.job_id, [p.rows, p.model]) for p in group}
    created = jobs.create_many(JobKind.PREDICTION, tasks, {p.job_id: p.owner for p in group})
    try:
        if len(group) == 1:  # alone: the plain task, under the job's own id
            send(queue, group[0].job_id, tasks[group[0].job_id])
        else:
            members = [[p.job_id, p.rows, p.model] for p in group]
            queue.send_task(PREDICT_GROUP_TASK, args=[members], task_id=f"group-{new_job_id()}")
    except Exception as exc:
        for pending in group:
            jobs.fail(pending.job_id, "enqueue_failed", f"the job could not be queued: {exc}")
        raise
    return created
