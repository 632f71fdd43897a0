"""The Celery app configuration shared by the API (which only sends) and the workers."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from celery import Celery

from irisq.job_types import Job, JobKind
from irisq.jobs import JobStore
from irisq.settings import Settings
from irisq.tasks import TASK_QUEUES

logger = logging.getLogger("irisq.jobs")


def make_celery(settings: Settings, main: str = "irisq") -> Celery:
    """A Celery app on the irisq Redis, speaking JSON only, that loses no accepted task.

    There is no result backend: job state lives in our own job records (irisq.jobs).
    """
    app = Celery(main, broker=settings.redis_url)
    app.conf.update(
        # JSON only, both ways: a pickled message on the queue is refused, never run.
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        task_routes={name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        task_default_queue="predict",
        # Acknowledge after the task ran, and put it back if its process died: a worker
        # killed mid-job leaves the task to the next worker instead of losing it. Job
        # records make a second delivery harmless (one result; attempts are counted).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # One message reserved per pool process: batches share the predict queue, and a
        # prediction prefetched behind a running batch would wait for the whole batch.
        worker_prefetch_multiplier=1,
        # On losing Redis a worker cannot acknowledge anyway: stop the running tasks so they
        # are delivered again, rather than finishing work whose ack would be lost.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        # A publish against a Redis that is down must fail fast, so the API can answer 503
        # instead of holding the request through Celery's default retries.
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for Redis as long as it takes
        broker_transport_options={
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
            # Redis re-delivers an unacknowledged task after this; it exceeds every hard time
            # limit (settings check), so only tasks whose worker vanished come back.
            "visibility_timeout": settings.visibility_timeout_seconds,
            # Sweep for such tasks every few seconds rather than kombu's ~100 s default.
            "unacked_restore_interval": max(1, min(10, settings.visibility_timeout_seconds // 10)),
            "unacked_restore_throttle": 1,
        },
        enable_utc=True,
    )
    return app


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Tasks waiting in `queue`: Celery keeps each queue as a Redis list of that name (the
    job records share the broker's Redis database)."""
    return int(client.llen(queue))


def task_message(task_name: str, job_id: str, args: list[Any]) -> dict[str, Any]:
    """What the job record keeps so that its task can be sent again: name and arguments."""
    return {"name": task_name, "args": [job_id, *args]}


def task_message_text(task_name: str, args_json: str) -> str:
    """`task_message`'s JSON, around arguments already encoded (`args_json`: the items of
    the arguments list, job id first, as JSON text)."""
    return f'{{"name": {json.dumps(task_name)}, "args": [{args_json}]}}'


def send(app: Celery, job_id: str, task: dict[str, Any]) -> None:
    """Send the task of `job_id` (the task id is the job id, so Celery logs name the job)."""
    app.send_task(task["name"], args=task["args"], task_id=job_id)


def submit(
    app: Celery,
    store: JobStore,
    kind: JobKind,
    task_name: str,
    args: list[Any],
    job_id: str,
    owner: str | None = None,
    stored_bytes: int = 0,
    callback_url: str | None = None,
) -> Job:
    """Record a queued job, then send its task by name with the job id first in `args`.

    The record comes first so that a worker never picks up a task whose job is unknown; if
    the send fails, the record says so instead of staying queued forever. The record keeps
    the task, so the reconciler can send it again if Redis loses it (see worker.reconciler).
    """
    task = task_message(task_name, job_id, args)
    stored = {job_id: stored_bytes} if stored_bytes else None
    callbacks = {job_id: callback_url} if callback_url else None
    job = store.create_many(
        kind, {job_id: task}, {job_id: owner}, stored=stored, callbacks=callbacks
    )[job_id]
    try:
        send(app, job.job_id, task)
    except Exception as exc:
        store.fail(job.job_id, "enqueue_failed", f"the job could not be queued: {exc}")
        logger.error("job could not be queued: %s", exc, extra={"job_id": job.job_id})
        raise
    logger.info("%s job queued", kind.value, extra={"job_id": job.job_id})
    return job
