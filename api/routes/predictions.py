"""Predictions: submit rows to score; the result is read from the job."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.accepted import JobAccepted, accepted
from api.auth import CallerDep
from api.deps import JobStoreDep, QueueDep, SettingsDep
from api.problems import AUTH_PROBLEMS, Problem
from api.submission import enqueue
from irisq.jobs import JobKind
from irisq.schema import PredictionRequest
from irisq.tasks import PREDICT_TASK

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={**AUTH_PROBLEMS, 422: {"model": Problem}, 503: {"model": Problem}},
)
def create_prediction(
    request: PredictionRequest,
    response: Response,
    jobs: JobStoreDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: CallerDep,
) -> JobAccepted:
    """Queue 1 to 10,000 rows for scoring; poll the job for the species."""
    rows = [row.as_list() for row in request.rows]
    job = enqueue(
        queue, jobs, settings, caller, JobKind.PREDICTION, PREDICT_TASK, [rows, request.model]
    )
    return accepted(job, response)
