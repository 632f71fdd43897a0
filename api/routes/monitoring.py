"""Monitoring: how the flowers sent for prediction drift from the training data.

The report is computed by a train worker (numpy and scipy never load in the API): the API
sends the drift task and waits for the report the worker leaves in Redis, where the same
window is answered from for a minute. Only train workers compute it (they keep the
prediction log's files); with none alive the answer is a quick 503.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from api.auth import CallerDep
from api.deps import AsyncRedisDep, CeleryDep
from api.problems import AUTH_PROBLEMS, Problem, ServiceUnavailableError
from irisq.drift import COMPUTING, DriftReport, as_utc, cache_key
from irisq.tasks import DRIFT_TASK, TRAIN_QUEUE
from irisq.workers import live_workers_async

router = APIRouter(prefix="/v1/monitoring", tags=["monitoring"])

DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=31)
WAIT_SECONDS = 30.0
SINCE = "Start of the window (default: until − 24 h); a time without a zone is UTC."


def window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    """[since, until) in UTC, whole seconds; 422 naming the field when it is not one."""
    end = as_utc(until) if until is not None else datetime.now(UTC)
    start = as_utc(since) if since is not None else end - DEFAULT_WINDOW
    start, end = start.replace(microsecond=0), end.replace(microsecond=0)
    if not start < end:
        raise HTTPException(422, "since must be before until")
    if end - start > MAX_WINDOW:
        raise HTTPException(
            422, f"the window from since to until is at most {MAX_WINDOW.days} days"
        )
    return start, end


@router.get(
    "/drift",
    response_model=DriftReport,
    responses={**AUTH_PROBLEMS, 422: {"model": Problem}, 503: {"model": Problem}},
)
async def get_drift(
    caller: CallerDep,
    redis: AsyncRedisDep,
    celery: CeleryDep,
    since: Annotated[datetime | None, Query(description=SINCE)] = None,
    until: Annotated[
        datetime | None, Query(description="End of the window (default: now).")
    ] = None,
) -> DriftReport:
    """The logged predictions of [since, until) against the training data: per feature the
    PSI and a Kolmogorov-Smirnov test, with histograms; the predicted species mix against
    the training mix; the species per hour; one `drift` verdict and the thresholds it
    used. A window with no rows answers `rows: 0` and no verdict."""
    del caller  # any valid key may read it
    start, end = window(since, until)
    key = cache_key(start, end)
    if (cached := await redis.get(key)) is not None:
        return DriftReport.model_validate_json(cached)
    if not await live_workers_async(redis, TRAIN_QUEUE):
        raise ServiceUnavailableError("no train worker is running to compute drift")
    # One report is computed at a time (COMPUTING, released by the worker when it is done):
    # a request whose window is not being computed waits for its turn, then sends its task.
    deadline, sent = time.monotonic() + WAIT_SECONDS, False
    while time.monotonic() < deadline:
        if not sent and await redis.set(COMPUTING, key, nx=True, ex=int(WAIT_SECONDS)):
            await run_in_threadpool(
                celery.send_task, DRIFT_TASK, args=[start.isoformat(), end.isoformat()]
            )
            sent = True
        await asyncio.sleep(0.1)
        if (found := await redis.get(key)) is not None:
            return DriftReport.model_validate_json(found)
    raise ServiceUnavailableError(
        f"the drift report was not ready within {WAIT_SECONDS:.0f} s (other reports, or a "
        "training, held the train worker); ask again"
    )
