"""Running a job's function under its job record: running, then succeeded or failed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from irisq.jobs import JobStore
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
    work: Callable[[], dict[str, Any]],
    stage: str | None = None,
) -> None:
    """Mark the job running, run `work`, and store its result or a readable error."""
    if not store.start(job_id, stage):
        logger.warning("job %s is unknown, expired or already finished; skipping it", job_id)
        return
    try:
        result = work()
    except tuple(EXPECTED_ERRORS) as exc:
        logger.info("job %s failed: %s", job_id, exc)
        store.fail(job_id, EXPECTED_ERRORS[type(exc)], str(exc), getattr(exc, "errors", None))
    except Exception as exc:
        logger.exception("job %s failed unexpectedly", job_id)
        store.fail(job_id, "internal_error", f"{type(exc).__name__}: {exc}")
    else:
        store.succeed(job_id, result)
