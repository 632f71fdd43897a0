"""Training: start a run that registers a version and may promote it to champion."""

from __future__ import annotations

from typing import Any, get_args

from fastapi import APIRouter, Query, Request, Response, status
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
    challenger: bool = Query(
        False,
        description="Register the new version as the challenger (scored in the shadow of the "
        "champion on live traffic, its agreement in `GET /v1/models`) instead of offering it "
        "to the quality gate.",
    ),
) -> Any:
    """Queue a training run (admin keys); its result says whether the new version became
    champion (or the challenger)."""
    checked_callback(callback_url, settings, caller)
    key = KeyUse(idempotency, caller.name, idempotency_key)
    # Named only when set: a key used before this option existed still matches its request.
    asked = {"callback_url": callback_url, **({"challenger": "true"} if challenger else {})}
    same = await key.of_body(http, "training", asked)
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
            [request.algorithm, request.params, *([True] if challenger else [])],
            job_ids.new(caller.name),
            callback_url=callback_url,
        )
    except BaseException:
        await key.failed()
        raise
    await key.done(same, answer_of(job).model_dump_json())
    return accepted(job, response)
