"""The tasks of a large batch scored in parts (worker.batch_parts): cutting the upload up,
scoring each part, and putting the result together after the last."""

from __future__ import annotations

import logging
import os
import time
from contextlib import suppress
from typing import Any

from redis.exceptions import RedisError

from irisq.batch_storage import StorageUnavailableError
from irisq.batches import INPUT, BatchFiles
from irisq.job_types import BatchResult, JobKind, JobStatus
from irisq.jobs import JobStore
from irisq.logs import job_context
from irisq.quotas import set_stored_bytes
from irisq.settings import get_settings
from irisq.tasks import BATCH_PART_TASK, PREDICT_QUEUE
from irisq.workers import live_processes
from worker.batch_parts import (
    PartStoppedError,
    assemble,
    cut_into_parts,
    remove_parts,
    score_part,
)
from worker.celery_app import app
from worker.context import batch_storage, job_store, model_cache, redis_client, result_files
from worker.csv_reading import read_header
from worker.jobs import (
    EXPECTED_ERRORS,
    JobCanceledError,
    expected_error,
    internal_error,
    settle,
    time_limits,
    valid_job_id,
)
from worker.part_ledger import Part, PartLedger, Plan
from worker.prediction_log import BATCH_SAMPLE_LIMIT, BatchSample
from worker.storage_faults import for_batch, stored_size

logger = logging.getLogger(__name__)
settings = get_settings()

# Time one task has to put the parts together before another may (it copies the parts).
FINISH_SECONDS = 600


def part_task_id(job_id: str, index: int) -> str:
    return f"{job_id}-part-{index}"


def job_of_task(task_id: str) -> str:
    """The job a task runs for: a part's task id is its batch's job id and its index."""
    return task_id.split("-part-")[0]


def ledger_of(store: JobStore, job_id: str) -> PartLedger:
    return PartLedger(redis_client(), job_id, store.ttl_seconds)


def split_batch(
    store: JobStore, job_id: str, files: BatchFiles, skip_invalid: bool, rows_total: int
) -> None:
    """Cut the upload into parts and queue the first ones; for a batch already cut (its
    task sent again: every part's task was lost), queue again the parts with no outcome."""
    ledger = ledger_of(store, job_id)
    plan = ledger.plan()
    if plan is None:
        with suppress(RedisError):
            store.progress(job_id, 0.0, "cutting the file into parts")
        header, dialect = read_header(lambda: files.reader(INPUT))
        parts = cut_into_parts(
            lambda: files.reader(INPUT), header, dialect.delimiter, settings.batch_part_bytes
        )
        cache = model_cache()
        version, _ = cache.get()  # once: every part is scored by this version
        fresh = Plan(version, cache.source, skip_invalid, rows_total, time.time(), tuple(parts))
        plan = ledger.begin(fresh)
        if plan is None:
            raise RuntimeError("the batch's plan could not be read back from Redis")
        logger.info("batch cut into %d parts", len(plan.parts))
    elif not ledger.requeue_missing(plan):
        finish(store, ledger, plan, job_id, files)
        return
    at_once = settings.batch_parts_at_once or live_processes(redis_client(), PREDICT_QUEUE)
    for _ in range(max(1, at_once)):  # this process at least: it is on the queue
        if not queue_next(ledger, job_id):
            break


def queue_next(ledger: PartLedger, job_id: str) -> bool:
    index = ledger.take_next()
    if index is None:
        return False
    app.send_task(BATCH_PART_TASK, args=[job_id, index], task_id=part_task_id(job_id, index))
    return True


@app.task(name=BATCH_PART_TASK, **time_limits(settings.batch_time_limit_seconds))
def batch_part(job_id: str, index: int) -> None:
    """Score part `index` of the batch `job_id`; after the last part, settle the job."""
    if not valid_job_id(job_id):
        return
    store = job_store()
    ledger = ledger_of(store, job_id)
    plan = ledger.plan()
    if plan is None or type(index) is not int or not 0 <= index < len(plan.parts):
        logger.warning("no such part of a batch (its job ended or expired): %.40r", index)
        return
    files = BatchFiles(batch_storage(), job_id)
    with job_context(job_id):
        outcome = run_part(store, ledger, plan, plan.parts[index], files)
        count = ledger.record(index, outcome)
        if "counts" in outcome:
            queue_next(ledger, job_id)
        else:  # the batch fails or ended: the parts not queued yet never will be
            count = ledger.skip_rest()
        if count == len(plan.parts):
            finish(store, ledger, plan, job_id, files)


def run_part(
    store: JobStore, ledger: PartLedger, plan: Plan, part: Part, files: BatchFiles
) -> dict[str, Any]:
    """Score the part: its counts, or {"error": ...}, or {"stopped": True} when the batch
    ended or failed in an earlier part."""
    job_id = files.job_id
    if ledger.count_try(part.index) > settings.max_attempts:
        return _error(
            "too_many_attempts",
            f"part {part.index + 1} of the file was delivered {settings.max_attempts} times "
            "and its worker stopped each time",
        )

    def check(rows: int) -> None:
        """Between blocks: stop if the batch ended or an earlier part failed; progress."""
        if store.status(job_id) is not JobStatus.RUNNING:
            raise PartStoppedError(job_id)
        try:
            total, failed = ledger.report_rows(part.index, rows)
            if failed is not None and failed < part.index:
                raise PartStoppedError(job_id)
            store.progress(job_id, total / max(plan.rows_total, 1), "scoring")
        except RedisError as exc:  # progress is best-effort: never fail a batch over it
            logger.warning("progress not recorded: %s", exc)

    started = time.perf_counter()
    try:
        check(0)
        _, estimator = model_cache().get(plan.version)
        sample = BatchSample(settings.prediction_log_batch_share, BATCH_SAMPLE_LIMIT)
        counts = for_batch(
            lambda: score_part(files, plan, part, estimator, check, ledger, sample), store, files
        )
        sample.keep(store.redis, job_id, plan.version)
        logger.info(
            "part %d of %d: %d rows read in %.2f s by process %d",
            part.index + 1,
            len(plan.parts),
            counts["rows_read"],
            time.perf_counter() - started,
            os.getpid(),
        )
        return counts
    except (PartStoppedError, JobCanceledError):
        return {"stopped": True}
    except EXPECTED_ERRORS as exc:
        return _error(*expected_error(exc), getattr(exc, "details", None))
    except Exception as exc:
        return _error(*internal_error(exc))


def _error(
    error_type: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, "details": details}}


def finish(store: JobStore, ledger: PartLedger, plan: Plan, job_id: str, files: BatchFiles) -> None:
    """Every part has an outcome: the job's result from them (or the first part's error);
    the parts' files and records go."""
    if not ledger.claim_finish(FINISH_SECONDS):
        return
    if store.status(job_id) is JobStatus.RUNNING:

        def work() -> BatchResult:
            started = time.perf_counter()
            result = BatchResult.model_validate(assemble(files, plan, ledger.outcomes()))
            remove_parts(files, plan)  # before the job's files are measured for its quota
            logger.info(
                "%d parts put together in %.2f s", len(plan.parts), time.perf_counter() - started
            )
            return result

        settle(
            store,
            job_id,
            JobKind.BATCH,
            work,
            result_files(),
            plan.started,
            stored_bytes=lambda: stored_size(files),
        )
    try:
        if store.status(job_id) in (JobStatus.CANCELED, None):  # canceled or deleted
            files.delete()
            set_stored_bytes(store.redis, store.owner(job_id), job_id, 0)
        else:
            remove_parts(files, plan)
    except StorageUnavailableError as exc:  # the job's files go with it (retention)
        logger.warning("files of the batch's parts not removed yet: %s", exc)
    ledger.forget()
