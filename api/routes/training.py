"""Training: start a run that registers a version and may promote it to champion."""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from api.accepted import JobAccepted, accepted, accepted_doc
from api.auth import AdminDep
from api.bodies import json_body_doc, json_model
from api.deps import JobStoreDep, QueueDep, SettingsDep
from api.problems import ADMIN_PROBLEMS, Problem
from api.submission import enqueue
from irisq.algorithms import Algorithm, TrainingRequest
from irisq.job_types import JobKind
from irisq.tasks import TRAIN_TASK

router = APIRouter(prefix="/v1/training", tags=["training"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={
        **ADMIN_PROBLEMS,
        **accepted_doc(),
        422: {"model": Problem},
        503: {"model": Problem},
    },
    openapi_extra={"requestBody": json_body_doc(TrainingRequest)},
)
async def create_training(
    http: Request,
    response: Response,
    jobs: JobStoreDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: AdminDep,
) -> JobAccepted:
    """Queue a training run (admin keys); its result says whether the new version became
    champion."""
    request = await json_model(http, TrainingRequest, union_tags=get_args(Algorithm))
    job = await run_in_threadpool(
        enqueue,
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
