"""Running a job's function under its job record: running, then succeeded or failed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from irisq import metrics
from irisq.jobs import JobStore
from irisq.logs import job_context
from worker.csv_reading import BatchRejectedError
from worker.registry import ModelNotFoundError

logger = logging.getLogger(__name__)

# Errors that say something about the request or the registry, shown to the user as they are.
EXPECTED_ERRORS: dict[type[Exception], str] = {
    ModelNotFoundError: "model_not_found",
    BatchRejectedError: "invalid_csv",
}


def run_job(
    store: JobStore,
    job_id: str,
    kind: str,
    work: Callable[[], dict[str, Any]],
    stage: str | None = None,
) -> None:
    """Mark the job running, run `work`, and store its result or a readable error."""
    with job_context(job_id):
        if not store.start(job_id, stage):
            logger.warning("job is unknown, expired or already finished; skipping it")
            return
        started = time.perf_counter()
        result: dict[str, Any] = {}
        try:
            result = work()
        except tuple(EXPECTED_ERRORS) as exc:
            logger.info("job failed: %s", exc)
            kind_of = next(name for cls, name in EXPECTED_ERRORS.items() if isinstance(exc, cls))
            store.fail(job_id, kind_of, str(exc), getattr(exc, "errors", None))
            status = "failed"
        except Exception as exc:
            logger.exception("job failed unexpectedly")
            store.fail(job_id, "internal_error", f"{type(exc).__name__}: {exc}")
            status = "failed"
        else:
            store.succeed(job_id, result)
            logger.info("job succeeded")
            status = "succeeded"
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
