"""Celery tasks: thin wrappers that run the plain functions under a job record.

Each task has a soft time limit (the job fails with a clear reason) a little under its hard
one (the process is killed); Redis's visibility timeout exceeds both (irisq.settings).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from redis.exceptions import RedisError
from redis.lock import Lock

from irisq.batch_storage import StorageUnavailableError
from irisq.batches import INPUT, BatchFiles
from irisq.job_types import BatchResult, JobKind, JobStatus
from irisq.quotas import set_stored_bytes
from irisq.settings import get_settings
from irisq.tasks import BATCH_TASK, DRIFT_TASK, PREDICT_GROUP_TASK, PREDICT_TASK, TRAIN_TASK
from worker import batch as batches
from worker import grouped, storage_faults, training
from worker.celery_app import app
from worker.context import (
    batch_storage,
    job_store,
    model_cache,
    redis_client,
    result_files,
    shadow_scorer,
)
from worker.jobs import run_job, stop_if_canceled, time_limits, valid_job_id
from worker.part_tasks import split_batch
from worker.prediction_log import BATCH_SAMPLE_LIMIT, BatchSample
from worker.storage_faults import stored_size

logger = logging.getLogger(__name__)

REGISTRY_LOCK = "irisq:lock:registry"
settings = get_settings()


@app.task(name=PREDICT_GROUP_TASK, bind=True, **time_limits(settings.predict_time_limit_seconds))
def predict_group(self: Task, members: list[list[Any]]) -> None:
    """Score prediction jobs ([job id, rows, model] each; one for a lone request) in one task."""
    grouped.run_group(
        job_store(), model_cache(), result_files(), members, shadow_scorer(), _redelivered(self)
    )


# The single-job task an earlier API sent, and the task each prediction's record keeps for
# the reconciler to send again (irisq.queueing.task_message): a group of one.
@app.task(name=PREDICT_TASK, bind=True, **time_limits(settings.predict_time_limit_seconds))
def predict(self: Task, job_id: str, rows: list[list[float]], model: str) -> None:
    """Score `rows` (in FEATURES order) with `model` ("champion" or a version)."""
    members = [[job_id, rows, model]]
    grouped.run_group(
        job_store(), model_cache(), result_files(), members, shadow_scorer(), _redelivered(self)
    )


def _redelivered(task: Task) -> bool:
    """Whether Redis gave this message back after a worker held it (its process was killed,
    or it vanished): its jobs may be what killed it."""
    return bool((task.request.delivery_info or {}).get("redelivered"))


def _registry_lock() -> Lock:
    # Held for a registration and a gate (seconds). It expires by itself after a minute, so
    # a holder that stalls (SIGSTOP, a paused VM) cannot block every other training.
    lock: Lock = redis_client().lock(REGISTRY_LOCK, timeout=60, blocking_timeout=60)
    return lock


@app.task(name=TRAIN_TASK, **time_limits(settings.train_time_limit_seconds))
def train(job_id: str, algorithm: str, params: dict[str, Any], as_challenger: bool = False) -> None:
    """Train `algorithm` with `params`, register it, and offer it to the champion gate (or
    make it the challenger)."""
    store = job_store()

    def report(progress: float, stage: str) -> None:
        stop_if_canceled(store, job_id)  # a canceled training registers nothing
        try:
            store.progress(job_id, progress, stage)
        except RedisError as exc:
            logger.warning("progress not recorded: %s", exc)

    run_job(
        store,
        job_id,
        JobKind.TRAINING,
        lambda: training.train_and_register(
            algorithm,
            params,
            settings,
            job_id=job_id,
            report=report,
            registry_lock=_registry_lock,
            as_challenger=as_challenger is True,  # read from the queue: only True counts
        ),
        result_files(),
        stage="starting",
    )


@app.task(name=DRIFT_TASK, soft_time_limit=60, time_limit=90)
def drift(since: str, until: str) -> None:
    """Compute the drift report of [since, until) and leave it in Redis (irisq.drift)."""
    from worker.drift import compute_and_keep

    compute_and_keep(redis_client(), settings, since, until)


@app.task(name=BATCH_TASK, **time_limits(settings.batch_time_limit_seconds))
def batch(job_id: str, on_invalid: str, rows_total: int) -> None:
    """Score the CSV uploaded for `job_id`; bad rows refuse the file or are skipped."""
    if not valid_job_id(job_id):
        return
    store = job_store()

    def report(progress: float) -> None:
        # Called between chunks (a fraction of a second apart): a canceled batch stops here.
        stop_if_canceled(store, job_id)
        try:
            store.progress(job_id, progress, "scoring")
        except RedisError as exc:  # progress is best-effort: never fail a batch over it
            logger.warning("progress not recorded: %s", exc)

    files = BatchFiles(batch_storage(), job_id)

    def score_or_split() -> BatchResult | None:
        """A file larger than a part is scored in parts by every predict process (the
        parts settle the job: None); a smaller one here, whole."""
        skip = on_invalid == "skip"
        if (files.file_size(INPUT) or 0) > settings.batch_part_bytes:
            split_batch(store, job_id, files, skip, rows_total)
            return None
        sample = BatchSample(settings.prediction_log_batch_share, BATCH_SAMPLE_LIMIT)
        summary = batches.score_batch(files, model_cache(), skip, rows_total, report, sample)
        sample.keep(redis_client(), job_id, summary["model_version"])
        return BatchResult.model_validate(summary)

    run_job(
        store,
        job_id,
        JobKind.BATCH,
        lambda: storage_faults.for_batch(score_or_split, store, files),
        result_files(),
        stage="scoring",
        stored_bytes=lambda: stored_size(files),
    )
    if store.status(job_id) in (JobStatus.CANCELED, None):  # canceled or deleted: no files
        try:
            files.delete()
        except StorageUnavailableError as exc:  # the reconciler sweeps them later
            logger.warning("files of a canceled batch not removed yet: %s", exc)
        set_stored_bytes(store.redis, store.owner(job_id), job_id, 0)
