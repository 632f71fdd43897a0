"""Running a job's function under its job record: running, then succeeded or failed."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded

from irisq import metrics
from irisq.ids import is_job_id
from irisq.job_types import BatchResult, JobResult, JobStatus, PredictionResult
from irisq.jobs import JobStore, ResultFile, StartOutcome
from irisq.logs import job_context
from irisq.results import ResultFiles
from worker.errors import ExpectedJobError

logger = logging.getLogger(__name__)


class JobCanceledError(Exception):
    """The job was canceled while it ran; raised at the next check, between chunks."""


# Errors that say something about the request or the registry, shown as they are.
EXPECTED_ERRORS = (ExpectedJobError, SoftTimeLimitExceeded)


def expected_error(exc: Exception) -> tuple[str, str]:
    """(error type, message) for one of EXPECTED_ERRORS, as the job record shows them."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return "time_limit", "the job ran past its time limit and was stopped"
    assert isinstance(exc, ExpectedJobError)
    return exc.error_type, str(exc) or exc.error_type


def internal_error(exc: Exception) -> tuple[str, str]:
    """(error type, message) for an unexpected error: the details go to the log only, under
    an id the message gives (an exception's text may name hosts, paths or secrets)."""
    error_id = uuid.uuid4().hex[:12]
    logger.error("job failed unexpectedly: error %s", error_id, exc_info=exc)
    return "internal_error", f"an unexpected error occurred; it was logged as error {error_id}"


def time_limits(hard_seconds: int) -> dict[str, int]:
    """A task's hard limit, and a soft one 10% (at least a second) earlier to fail the job
    cleanly."""
    soft = hard_seconds - max(1, hard_seconds // 10)
    return {"time_limit": hard_seconds, "soft_time_limit": soft}


def valid_job_id(job_id: object) -> bool:
    """Ids read from the queue are not trusted: only a UUID becomes a key or a path."""
    if is_job_id(job_id):
        return True
    logger.error("refusing a task whose job id is not a UUID: %r", str(job_id)[:80])
    return False


def stop_if_canceled(store: JobStore, job_id: str) -> None:
    """Raise JobCanceledError if the job was canceled or deleted (one small Redis read)."""
    if store.status(job_id) in (JobStatus.CANCELED, None):
        raise JobCanceledError(job_id)


def run_job(
    store: JobStore,
    job_id: str,
    kind: str,
    work: Callable[[], JobResult | None],
    results: ResultFiles,
    stage: str | None = None,
    stored_bytes: Callable[[], int] | None = None,
) -> None:
    """Mark the job running, run `work`, and store its result or a readable error.

    A job that is already final (a second delivery, or canceled) is skipped; one delivered
    too many times fails instead of running again. Whichever delivery finishes first stores
    its outcome; a later one finds the job final and drops its own (the store's scripts).
    A large result goes to a file (`results`); `stored_bytes` measures the job's files.
    `work` returns None when other tasks go on with the job (a large batch's parts): they
    settle it.
    """
    if not valid_job_id(job_id):
        return
    with job_context(job_id):
        outcome = store.start(job_id, stage)
        if outcome is StartOutcome.SKIPPED:
            logger.warning("job is unknown, expired, canceled or already finished; skipping it")
            return
        if outcome is StartOutcome.GAVE_UP:
            logger.error("job delivered too many times: failed without running it again")
            _record(store, kind, "failed", 0.0, None)
            return
        settle(store, job_id, kind, work, results, time.time(), stored_bytes)


def settle(
    store: JobStore,
    job_id: str,
    kind: str,
    work: Callable[[], JobResult | None],
    results: ResultFiles,
    started: float,
    stored_bytes: Callable[[], int] | None = None,
) -> None:
    """Run `work` for a running job (since `started`, epoch seconds) and store its result
    or error, unless it returns None (others go on with the job)."""
    result: JobResult | None = None
    try:
        result = work()
        if result is None:
            return
    except JobCanceledError:
        logger.info("job canceled while running: stopped")
        status, stored = "canceled", True
    except EXPECTED_ERRORS as exc:
        kind_of, message = expected_error(exc)
        status = "failed"
        stored = store.fail(job_id, kind_of, message, getattr(exc, "details", None))
        if stored:
            logger.info("job failed: %s", message)
    except Exception as exc:
        status = "failed"
        stored = store.fail(job_id, *internal_error(exc))
    else:
        status = "succeeded"
        size = stored_bytes() if stored_bytes else None
        placed = results.place(job_id, result.model_dump_json())
        stored = store.succeed(job_id, placed, size)
        if stored:
            logger.info("job succeeded")
        elif isinstance(placed, ResultFile) and store.status(job_id) is None:
            results.delete(job_id)  # deleted while it ran: leave no file behind
    if not stored:  # canceled meanwhile, or another delivery ended it first
        logger.warning("job had already ended: this delivery's %s result was dropped", status)
        status, result = "dropped", None
    _record(store, kind, status, time.time() - started, result)


def species_counts(result: JobResult | None) -> dict[str, int]:
    """How many rows of a result were predicted as each species (none for a training)."""
    if isinstance(result, BatchResult):
        return result.counts.model_dump()
    species: dict[str, int] = {}
    if isinstance(result, PredictionResult):
        for prediction in result.predictions:
            species[prediction.species] = species.get(prediction.species, 0) + 1
    return species


def _record(
    store: JobStore, kind: str, status: str, seconds: float, result: JobResult | None
) -> None:
    """Metrics never fail a job: a Redis hiccup here is logged and forgotten."""
    version = result.model_version if result is not None else None
    try:
        metrics.record_job(store.redis, kind, status, seconds, species_counts(result), version)
    except Exception as exc:
        logger.warning("could not record job metrics: %s", exc)
