"""Celery tasks: thin wrappers that run the plain functions under a job record.

Each task has a soft time limit (the job fails with a clear reason) a little under its hard
one (the process is killed); Redis's visibility timeout exceeds both (irisq.settings).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from redis.exceptions import RedisError
from redis.lock import Lock

from irisq.batch_storage import StorageUnavailableError
from irisq.batches import INPUT, BatchFiles
from irisq.job_types import BatchResult, JobKind, JobStatus
from irisq.quotas import set_stored_bytes
from irisq.settings import get_settings
from irisq.tasks import BATCH_TASK, PREDICT_GROUP_TASK, PREDICT_TASK, TRAIN_TASK
from worker import batch as batches
from worker import grouped, training
from worker.celery_app import app
from worker.context import batch_storage, job_store, model_cache, redis_client, result_files
from worker.jobs import run_job, stop_if_canceled, valid_job_id
from worker.storage_faults import despite_storage_faults

logger = logging.getLogger(__name__)

REGISTRY_LOCK = "irisq:lock:registry"
settings = get_settings()


def _limits(hard_seconds: int) -> dict[str, int]:
    """Hard limit, and a soft one 10% (at least a second) earlier to fail the job cleanly."""
    soft = hard_seconds - max(1, hard_seconds // 10)
    return {"time_limit": hard_seconds, "soft_time_limit": soft}


@app.task(name=PREDICT_GROUP_TASK, **_limits(settings.predict_time_limit_seconds))
def predict_group(members: list[list[Any]]) -> None:
    """Score prediction jobs ([job id, rows, model] each; one for a lone request) in one task."""
    grouped.run_group(job_store(), model_cache(), result_files(), members)


# The single-job task an earlier API sent, and the task each prediction's record keeps for
# the reconciler to send again (irisq.queueing.task_message): a group of one.
@app.task(name=PREDICT_TASK, **_limits(settings.predict_time_limit_seconds))
def predict(job_id: str, rows: list[list[float]], model: str) -> None:
    """Score `rows` (in FEATURES order) with `model` ("champion" or a version)."""
    grouped.run_group(job_store(), model_cache(), result_files(), [[job_id, rows, model]])


def _registry_lock() -> Lock:
    # Held for a registration and a gate (seconds). It expires by itself after a minute, so
    # a holder that stalls (SIGSTOP, a paused VM) cannot block every other training.
    lock: Lock = redis_client().lock(REGISTRY_LOCK, timeout=60, blocking_timeout=60)
    return lock


@app.task(name=TRAIN_TASK, **_limits(settings.train_time_limit_seconds))
def train(job_id: str, algorithm: str, params: dict[str, Any]) -> None:
    """Train `algorithm` with `params`, register it, and offer it to the champion gate."""
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
            algorithm, params, settings, job_id=job_id, report=report, registry_lock=_registry_lock
        ),
        result_files(),
        stage="starting",
    )


def _first_byte(files: BatchFiles) -> bytes:
    """Read from the storage as scoring does: the upload is served again."""
    with files.reader(INPUT) as handle:
        return handle.read(1)


def _stored_size(files: BatchFiles) -> int:
    """What the batch stores, for its key's quota (0 while the storage does not answer: the
    next reconciler round counts what is there)."""
    try:
        return files.size()
    except StorageUnavailableError:
        return 0


@app.task(name=BATCH_TASK, **_limits(settings.batch_time_limit_seconds))
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

    def waiting(attempt: int) -> None:
        stop_if_canceled(store, job_id)
        with suppress(RedisError):
            store.progress(job_id, 0.0, f"waiting for the batch storage (try {attempt + 1})")

    run_job(
        store,
        job_id,
        JobKind.BATCH,
        lambda: BatchResult.model_validate(
            despite_storage_faults(
                lambda: batches.score_batch(
                    files, model_cache(), on_invalid == "skip", rows_total, report
                ),
                lambda: _first_byte(files),
                settings.storage_attempts,
                settings.storage_wait_seconds,
                waiting,
            )
        ),
        result_files(),
        stage="scoring",
        stored_bytes=lambda: _stored_size(files),
    )
    if store.status(job_id) in (JobStatus.CANCELED, None):  # canceled or deleted: no files
        try:
            files.delete()
        except StorageUnavailableError as exc:  # the reconciler sweeps them later
            logger.warning("files of a canceled batch not removed yet: %s", exc)
        set_stored_bytes(store.redis, store.owner(job_id), job_id, 0)
