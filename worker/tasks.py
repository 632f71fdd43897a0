"""Celery tasks: thin wrappers that run the plain functions under a job record."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError

from irisq.batches import BatchFiles
from irisq.jobs import JobKind
from irisq.settings import get_settings
from irisq.tasks import BATCH_TASK, PREDICT_TASK, TRAIN_TASK
from worker import batch as batches
from worker import inference, training
from worker.celery_app import app
from worker.context import job_store, model_cache
from worker.jobs import run_job

logger = logging.getLogger(__name__)


@app.task(name=PREDICT_TASK)
def predict(job_id: str, rows: list[list[float]], model: str) -> None:
    """Score `rows` (in FEATURES order) with `model` ("champion" or a version)."""
    run_job(
        job_store(),
        job_id,
        JobKind.PREDICTION,
        lambda: inference.predict(model_cache(), rows, model),
    )


@app.task(name=TRAIN_TASK)
def train(job_id: str, algorithm: str, params: dict[str, Any]) -> None:
    """Train `algorithm` with `params`, register it, and offer it to the champion gate."""
    store = job_store()

    def report(progress: float, stage: str) -> None:
        try:
            store.progress(job_id, progress, stage)
        except RedisError as exc:
            logger.warning("progress not recorded: %s", exc)

    run_job(
        store,
        job_id,
        JobKind.TRAINING,
        lambda: training.train_and_register(
            algorithm, params, get_settings(), job_id=job_id, report=report
        ),
        stage="starting",
    )


@app.task(name=BATCH_TASK)
def batch(job_id: str, on_invalid: str, rows_total: int) -> None:
    """Score the CSV uploaded for `job_id`; bad rows refuse the file or are skipped."""
    store = job_store()

    def report(progress: float) -> None:
        try:
            store.progress(job_id, progress, "scoring")
        except RedisError as exc:  # progress is best-effort: never fail a batch over it
            logger.warning("progress not recorded: %s", exc)

    files = BatchFiles(get_settings().batch_dir, job_id)
    run_job(
        store,
        job_id,
        JobKind.BATCH,
        lambda: batches.score_batch(files, model_cache(), on_invalid == "skip", rows_total, report),
        stage="scoring",
    )
