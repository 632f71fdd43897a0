"""Running a job's function under its job record: running, then succeeded or failed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from irisq import metrics
from irisq.jobs import JobStatus, JobStore, StartOutcome
from irisq.logs import job_context
from worker.csv_reading import BatchRejectedError
from worker.registry import ModelNotFoundError, RegistryUnavailableError

logger = logging.getLogger(__name__)


class JobCanceledError(Exception):
    """The job was canceled while it ran; raised at the next check, between chunks."""


# Errors that say something about the request or the registry, shown to the user as they are.
EXPECTED_ERRORS: dict[type[Exception], str] = {
    ModelNotFoundError: "model_not_found",
    BatchRejectedError: "invalid_csv",
    RegistryUnavailableError: "registry_unavailable",
    SoftTimeLimitExceeded: "time_limit",
}


def expected_error(exc: Exception) -> tuple[str, str]:
    """(error type, message) for one of EXPECTED_ERRORS, as the job record shows them."""
    kind_of = next(name for cls, name in EXPECTED_ERRORS.items() if isinstance(exc, cls))
    if isinstance(exc, SoftTimeLimitExceeded):
        return kind_of, "the job ran past its time limit and was stopped"
    return kind_of, str(exc) or kind_of


def stop_if_canceled(store: JobStore, job_id: str) -> None:
    """Raise JobCanceledError if the job was canceled (one small Redis read)."""
    if store.status(job_id) is JobStatus.CANCELED:
        raise JobCanceledError(job_id)


def run_job(
    store: JobStore,
    job_id: str,
    kind: str,
    work: Callable[[], dict[str, Any]],
    stage: str | None = None,
) -> None:
    """Mark the job running, run `work`, and store its result or a readable error.

    A job that is already final (a second delivery, or canceled) is skipped; one delivered
    too many times fails instead of running again. Whichever delivery finishes first stores
    its outcome; a later one finds the job final and drops its own (the store's scripts).
    """
    with job_context(job_id):
        outcome = store.start(job_id, stage)
        if outcome is StartOutcome.SKIPPED:
            logger.warning("job is unknown, expired, canceled or already finished; skipping it")
            return
        if outcome is StartOutcome.GAVE_UP:
            logger.error("job delivered too many times: failed without running it again")
            _record(store, kind, "failed", 0.0, {})
            return
        started = time.perf_counter()
        result: dict[str, Any] = {}
        try:
            result = work()
        except JobCanceledError:
            logger.info("job canceled while running: stopped")
            status, stored = "canceled", True
        except tuple(EXPECTED_ERRORS) as exc:
            kind_of, message = expected_error(exc)
            status = "failed"
            stored = store.fail(job_id, kind_of, message, getattr(exc, "errors", None))
            if stored:
                logger.info("job failed: %s", message)
        except Exception as exc:
            status = "failed"
            stored = store.fail(job_id, "internal_error", f"{type(exc).__name__}: {exc}")
            if stored:
                logger.exception("job failed unexpectedly")
        else:
            status = "succeeded"
            stored = store.succeed(job_id, result)
            if stored:
                logger.info("job succeeded")
        if not stored:  # canceled meanwhile, or another delivery ended it first
            logger.warning("job had already ended: this delivery's %s result was dropped", status)
            status, result = "dropped", {}
        _record(store, kind, status, time.perf_counter() - started, result)


def _record(
    store: JobStore, kind: str, status: str, seconds: float, result: dict[str, Any]
) -> None:
    """Metrics never fail a job: a Redis hiccup here is logged and forgotten."""
    species: dict[str, int] = dict(result.get("counts", {}))  # a batch's summary
    for prediction in result.get("predictions", []):
        species[prediction["species"]] = species.get(prediction["species"], 0) + 1
    try:
        metrics.record_job(store.redis, kind, status, seconds, species, result.get("model_version"))
    except Exception as exc:
        logger.warning("could not record job metrics: %s", exc)
