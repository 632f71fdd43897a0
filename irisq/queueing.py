"""The Celery app configuration shared by the API (which only sends) and the workers."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from irisq.jobs import Job, JobKind, JobStore
from irisq.settings import Settings
from irisq.tasks import TASK_QUEUES

logger = logging.getLogger("irisq.jobs")


def make_celery(settings: Settings, main: str = "irisq") -> Celery:
    """A Celery app on the irisq Redis, speaking JSON only.

    There is no result backend: job state lives in our own job records (irisq.jobs).
    """
    app = Celery(main, broker=settings.redis_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_routes={name: {"queue": queue} for name, queue in TASK_QUEUES.items()},
        task_default_queue="predict",
        # A publish against a Redis that is down must fail fast, so the API can answer 503
        # instead of holding the request through Celery's default retries.
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5},
        enable_utc=True,
    )
    return app


def submit(
    app: Celery,
    store: JobStore,
    kind: JobKind,
    task_name: str,
    args: list[Any],
    job_id: str | None = None,
) -> Job:
    """Record a queued job, then send its task by name with the job id first in `args`.

    The record comes first so that a worker never picks up a task whose job is unknown; if
    the send fails, the record says so instead of staying queued forever.
    """
    job = store.create(kind, job_id)
    try:
        # The task id is the job id, so Celery's own log lines name the job too.
        app.send_task(task_name, args=[job.job_id, *args], task_id=job.job_id)
    except Exception as exc:
        store.fail(job.job_id, "enqueue_failed", f"the job could not be queued: {exc}")
        logger.error("job could not be queued: %s", exc, extra={"job_id": job.job_id})
        raise
    logger.info("%s job queued", kind.value, extra={"job_id": job.job_id})
    return job
