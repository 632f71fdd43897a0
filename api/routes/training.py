"""Training: start a run that registers a version and may promote it to champion."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from api.accepted import JobAccepted, accepted, accepted_doc, answer_of
from api.auth import AdminDep
from api.bodies import json_body_doc, json_model
from api.deps import CeleryDep, IdempotencyDep, JobIdsDep, JobStoreDep, SettingsDep
from api.idempotency import KeyHeader, KeyUse
from api.problems import ADMIN_PROBLEMS, Problem
from api.submission import CallbackQuery, checked_callback, enqueue, replayed
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
        409: {"model": Problem, "description": "The Idempotency-Key is in use by a request."},
        422: {"model": Problem},
        503: {"model": Problem},
    },
    openapi_extra={"requestBody": json_body_doc(TrainingRequest)},
)
async def create_training(
    http: Request,
    response: Response,
    jobs: JobStoreDep,
    celery: CeleryDep,
    job_ids: JobIdsDep,
    settings: SettingsDep,
    caller: AdminDep,
    idempotency: IdempotencyDep,
    callback_url: CallbackQuery = None,
    idempotency_key: KeyHeader = None,
) -> Any:
    """Queue a training run (admin keys); its result says whether the new version became
    champion."""
    checked_callback(callback_url, settings, caller)
    key = KeyUse(idempotency, caller.name, idempotency_key)
    same = await key.of_body(http, "training", {"callback_url": callback_url})
    if (answer := await key.replay(same)) is not None:
        return replayed(answer)
    try:
        request = await json_model(http, TrainingRequest, union_tags=get_args(Algorithm))
        job = await run_in_threadpool(
            enqueue,
            celery,
            jobs,
            settings,
            caller,
            JobKind.TRAINING,
            TRAIN_TASK,
            [request.algorithm, request.params],
            job_ids.new(caller.name),
            callback_url=callback_url,
        )
    except BaseException:
        await key.failed()
        raise
    await key.done(same, answer_of(job).model_dump_json())
    return accepted(job, response)
