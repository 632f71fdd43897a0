"""Submitting a job: refuse when its queue is full, else record it and send its task."""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import redis.asyncio as aioredis
from celery import Celery
from fastapi import HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic_core import to_json

from api.batching import Pending
from api.idempotency import REPLAYED
from api.job_access import with_result
from api.problems import RETRY_AFTER_SECONDS, field_problem
from api.ratelimit import Usage
from irisq import celery_messages
from irisq.job_types import FINAL_STATUSES, Job, JobKind
from irisq.jobs import JobStore, Push
from irisq.keys import Caller
from irisq.queueing import queue_depth, submit, task_message_text
from irisq.settings import Settings
from irisq.tasks import PREDICT_GROUP_TASK, PREDICT_TASK, TASK_QUEUES
from irisq.webhooks import URL_MAX_CHARS, URL_PATTERN, callback_url_problem

if TYPE_CHECKING:  # api.resources builds the micro-batcher on `send_group`
    from api.resources import Resources

logger = logging.getLogger("irisq.jobs")

CallbackQuery = Annotated[
    str | None,
    Query(
        max_length=URL_MAX_CHARS,
        description="An http(s) URL to POST the job to once it ends, signed the Standard "
        "Webhooks way (see docs/webhooks.md); retried with backoff for over an hour. In "
        "production it must not name a loopback, private or metadata address.",
        # Documented, and checked by callback_url_problem, whose refusals say what is wrong
        # (a pattern checked by FastAPI would answer with the regex).
        json_schema_extra={"pattern": URL_PATTERN},
    ),
]


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
            503, queue_full_detail(queue, depth), {"Retry-After": str(RETRY_AFTER_SECONDS)}
        )


def queue_full_detail(queue: str, depth: int) -> str:
    return (
        f"the {queue!r} queue is full ({depth} tasks waiting); nothing was queued, "
        "try again shortly"
    )


def enqueue(
    celery: Celery,
    jobs: JobStore,
    settings: Settings,
    caller: Caller,
    kind: JobKind,
    task_name: str,
    args: list[Any],
    job_id: str,
    stored_bytes: int = 0,
    callback_url: str | None = None,
) -> Job:
    ensure_room(jobs, settings, task_name)
    return submit(
        celery, jobs, kind, task_name, args, job_id, caller.name, stored_bytes, callback_url
    )


async def send_group(
    app: Celery, jobs: JobStore, client: aioredis.Redis, settings: Settings, group: list[Pending]
) -> dict[str, Job]:
    """Record every prediction of a micro-batch and push one task for all, in one script.

    On the event loop, in one round trip: either every record and the task are stored, or,
    if the queue is full, none is. The guard (api.guard) refused a full queue before the
    body was read; this check is the exact one, made as the task is pushed (requests
    admitted together all saw room, and an `/invocations` request may push 25 groups). A
    lone request is a group of one, under its job's id (so Celery's log lines name the job).
    Each record keeps its own single-job task, which is what the reconciler re-sends if the
    group's task is lost.
    """
    queue_name = TASK_QUEUES[PREDICT_GROUP_TASK]
    # Each job's arguments as JSON once, for its record's task copy (what the reconciler
    # sends again) and for the group's message: a 10,000-row job's rows took 20 ms of this
    # loop to encode, twice. The rows by pydantic-core's encoder (~6 ms, the standard
    # library's ~10 ms: over a third of the API's busy time on 100,000-row /invocations).
    arguments = {
        p.job_id: f"{json.dumps(p.job_id)}, {to_json(p.rows).decode()}, {json.dumps(p.model)}"
        for p in group
    }
    tasks = {job_id: task_message_text(PREDICT_TASK, a) for job_id, a in arguments.items()}
    members = "[[" + ", ".join(f"[{a}]" for a in arguments.values()) + "]]"
    task_id = group[0].job_id if len(group) == 1 else f"group-{uuid.uuid4()}"
    summary = "[1 prediction]" if len(group) == 1 else f"[{len(group)} predictions]"
    message = celery_messages.encode(app, PREDICT_GROUP_TASK, task_id, members, summary)
    create, created = jobs.create_command(
        JobKind.PREDICTION,
        tasks,
        {p.job_id: p.owner for p in group},
        rows={p.job_id: len(p.rows) for p in group},
        callbacks={p.job_id: p.callback_url for p in group if p.callback_url},
        push=Push(queue_name, message, settings.max_queue_depth),
    )
    refuse_if_full(queue_name, int(await create.run(client)), settings)
    return created


async def submit_and_wait(
    resources: Resources,
    rows: list[list[float]],
    model: str,
    owner: str,
    wait: float | None,
    callback_url: str | None = None,
    read_result_file: bool = True,
) -> tuple[Job, bool]:
    """Queue one prediction job through the micro-batcher; wait for it if asked.

    Returns the job (finished if `wait` allowed) and whether it finished. A result too large
    for the record is read from its file, unless `read_result_file` is False (the caller
    reads what it needs of it)."""
    batcher, waiter = resources.batcher, resources.waiter
    pending = Pending(resources.job_ids.new(owner), rows, model, owner, callback_url)
    ended = waiter.expect(pending.job_id) if wait else None
    try:
        job = await batcher.submit(pending)
    except BaseException:
        if ended is not None:
            waiter.forget(pending.job_id, ended)
        raise
    if ended is None or wait is None:
        return job, False
    finished = await waiter.wait(pending.job_id, ended, wait)
    if finished is None:
        return job, False
    if finished.result_in_file and read_result_file:  # a large result: read off the loop
        finished = await run_in_threadpool(with_result, resources.results, finished)
    return finished, True


async def wait_for_job(resources: Resources, job_id: str, seconds: float) -> Job | None:
    """The job once it is final, if it is or becomes so within `seconds` (a job queued by an
    earlier request: a replay that asked to wait)."""
    waiter = resources.waiter
    ended = waiter.expect(job_id)  # before reading: an end announced meanwhile is not missed
    job = JobStore.parse(await resources.async_redis.hgetall(JobStore.key(job_id)))
    if job is None or job.status in FINAL_STATUSES:
        waiter.forget(job_id, ended)
    elif (job := await waiter.wait(job_id, ended, seconds)) is None:
        return None
    if job is not None and job.result_in_file:
        job = await run_in_threadpool(with_result, resources.results, job)
    return job if job is not None and job.status in FINAL_STATUSES else None


def checked_callback(url: str | None, settings: Settings, caller: Caller) -> str | None:
    """The callback URL if it may be used; 422 naming `callback_url` if not."""
    if url is None:
        return None
    problem = callback_url_problem(url, settings, caller.name)
    if problem is not None:
        raise field_problem("callback_url", f"the callback URL {problem}")
    return url


def replayed(answer: dict[str, Any], finished: Job | None = None) -> Response:
    """The answer to a retried request: the first one's 202, or the job if it has finished
    and the retry asked to wait."""
    headers = {"Location": str(answer["status_url"]), REPLAYED: "true"}
    if finished is not None:
        return Response(finished.model_dump_json(), 200, headers, media_type="application/json")
    return JSONResponse(answer, 202, headers)
