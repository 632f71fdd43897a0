"""Training: start a run that registers a version and may promote it to champion."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from api.accepted import JobAccepted, accepted
from api.deps import JobStoreDep, QueueDep
from api.problems import Problem
from irisq.algorithms import TrainingRequest
from irisq.jobs import JobKind
from irisq.queueing import submit
from irisq.tasks import TRAIN_TASK

router = APIRouter(prefix="/v1/training", tags=["training"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={422: {"model": Problem}, 503: {"model": Problem}},
)
def create_training(
    request: TrainingRequest, response: Response, jobs: JobStoreDep, queue: QueueDep
) -> JobAccepted:
    """Queue a training run; its result says whether the new version became champion."""
    job = submit(queue, jobs, JobKind.TRAINING, TRAIN_TASK, [request.algorithm, request.params])
    return accepted(job, response)
