"""Submitting a job: refuse when its queue is full, else record it and send its task."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis.asyncio as aioredis
from celery import Celery
from fastapi import HTTPException

from api.batching import Pending
from api.problems import RETRY_AFTER_SECONDS
from api.ratelimit import Usage
from irisq.job_types import Job, JobKind
from irisq.jobs import JobStore
from irisq.keys import Caller
from irisq.queueing import encode_task, queue_depth, submit, task_message
from irisq.settings import Settings
from irisq.tasks import PREDICT_GROUP_TASK, PREDICT_TASK, TASK_QUEUES

logger = logging.getLogger("irisq.jobs")


def ensure_room(jobs: JobStore, settings: Settings, task_name: str) -> None:
    """503 while the task's queue holds `max_queue_depth` tasks: accepting more would only
    grow a backlog no one will see answered in time (and fill Redis)."""
    queue = TASK_QUEUES[task_name]
    refuse_if_full(queue, queue_depth(jobs.redis, queue), settings)


def refuse_over_rows_quota(usage: Usage, rows: int, settings: Settings) -> None:
    """429 when these rows would take the key past its rows in flight (checked on the usage
    the guard read with the rate limit: no extra round trip)."""
    quota = settings.quota_rows_in_flight
    if usage.rows + rows > quota:
        raise HTTPException(
            429,
            f"this key has {usage.rows:,} rows queued or running and asks for {rows:,} more; "
            f"its quota is {quota:,}: wait for some jobs to end",
            {"Retry-After": "1"},
        )


def refuse_if_full(queue: str, depth: int, settings: Settings) -> None:
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
    job_id: str,
    stored_bytes: int = 0,
) -> Job:
    ensure_room(jobs, settings, task_name)
    return submit(queue, jobs, kind, task_name, args, job_id, caller.name, stored_bytes)


async def send_group(
    app: Celery, jobs: JobStore, client: aioredis.Redis, settings: Settings, group: list[Pending]
) -> dict[str, Job]:
    """Record every prediction of a micro-batch and push one task for all, in one MULTI.

    On the event loop, in two round trips (the queue's depth, then the MULTI): either every
    record and the task are stored, or none is. Each record keeps its own single-job task,
    which is what the reconciler re-sends if the group's task is lost.
    """
    queue_name = TASK_QUEUES[PREDICT_TASK]
    refuse_if_full(queue_name, await client.llen(queue_name), settings)
    tasks = {p.job_id: task_message(PREDICT_TASK, p.job_id, [p.rows, p.model]) for p in group}
    if len(group) == 1:  # alone: the plain task, under the job's own id
        job_id = group[0].job_id
        message = encode_task(app, PREDICT_TASK, job_id, tasks[job_id]["args"], "[1 row]")
    else:
        members = [[p.job_id, p.rows, p.model] for p in group]
        summary = f"[{len(group)} predictions]"
        message = encode_task(app, PREDICT_GROUP_TASK, f"group-{uuid.uuid4()}", [members], summary)
    async with client.pipeline(transaction=True) as pipe:
        created = jobs.queue_create_many(
            pipe,
            JobKind.PREDICTION,
            tasks,
            {p.job_id: p.owner for p in group},
            rows={p.job_id: len(p.rows) for p in group},
        )
        pipe.lpush(queue_name, message)
        await pipe.execute()
    return created
