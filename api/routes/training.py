"""Training: start a run that registers a version and may promote it to champion."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from api.accepted import JobAccepted, accepted
from api.auth import AdminDep
from api.deps import JobStoreDep, QueueDep, SettingsDep
from api.problems import ADMIN_PROBLEMS, Problem
from api.submission import enqueue
from irisq.algorithms import TrainingRequest
from irisq.jobs import JobKind
from irisq.tasks import TRAIN_TASK

router = APIRouter(prefix="/v1/training", tags=["training"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={**ADMIN_PROBLEMS, 422: {"model": Problem}, 503: {"model": Problem}},
)
def create_training(
    http: Request,
    request: TrainingRequest,
    response: Response,
    jobs: JobStoreDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: AdminDep,
) -> JobAccepted:
    """Queue a training run (admin keys); its result says whether the new version became
    champion."""
    job = enqueue(
        queue,
        jobs,
        settings,
        caller,
        JobKind.TRAINING,
        TRAIN_TASK,
        [request.algorithm, request.params],
        http.app.state.job_ids.new(caller.name),
    )
    return accepted(job, response)
