"""Models: the registered versions, the champion and the challenger; promote a version by
hand, set or clear the challenger, and see how the challenger compares on live traffic."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError

from api.auth import AdminDep, CallerDep
from api.deps import RedisDep, RegistryDep
from api.problems import ADMIN_PROBLEMS, AUTH_PROBLEMS, Problem
from api.registry import ModelList, ModelVersion, RegistryReader
from irisq import shadow

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/models", tags=["models"])

VersionPath = PathParam(pattern=r"^[1-9][0-9]{0,8}$", description="A registered version.")
UNSIGNED: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The version was not trained by this irisq."}
}


class ChallengerRequest(BaseModel):
    """The version to shadow-score beside the champion on live traffic."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"version": 3}]})

    version: int = Field(ge=1, le=999_999_999, description="A registered version.")


async def _listed(registry: RegistryReader, redis: Any) -> ModelList:
    """Every version; with the challenger's figures unless Redis is away (then null: the
    registry's answer, or a change just made to it, is not held back for them)."""
    models = await registry.versions()
    if models.champion is not None and models.challenger is not None:
        try:
            models.shadow = await run_in_threadpool(
                shadow.comparison, redis, models.champion, models.challenger
            )
        except RedisError as exc:
            logger.warning("the challenger's figures could not be read: %s", exc)
    return models


async def _trusted(registry: RegistryReader, version: str) -> None:
    """404 for a version the registry does not have, 409 for one irisq did not train."""
    found = await registry.version(version)
    if found is None:
        raise HTTPException(404, f"model {registry.model_name!r} has no version {version}")
    if not registry.is_signed(found):
        raise HTTPException(
            409,
            f"version {version} carries no signature of this irisq (it was not trained here, "
            "or its tags were changed): workers would refuse to load it",
        )


@router.get("", response_model=ModelList, responses={**AUTH_PROBLEMS, 503: {"model": Problem}})
async def list_models(registry: RegistryDep, redis: RedisDep, caller: CallerDep) -> ModelList:
    """Registered versions, newest first, with algorithm, metrics, the gate's decision and
    their run; the champion, the challenger, and how the challenger agrees with the champion
    on the rows both scored."""
    del caller  # any valid key may read the registry
    return await _listed(registry, redis)


@router.get(
    "/challenger",
    response_model=ModelVersion,
    responses={**AUTH_PROBLEMS, 404: {"model": Problem}, 503: {"model": Problem}},
)
async def get_challenger(registry: RegistryDep, caller: CallerDep) -> ModelVersion:
    """The challenger's version (404 when there is none); how it compares with the champion
    is in `GET /v1/models` (`shadow`)."""
    del caller
    challenger = (await registry.aliases()).challenger
    if challenger is None:
        raise HTTPException(404, "there is no challenger: set one with PUT /v1/models/challenger")
    found = await registry.described(challenger)
    if found is None:
        raise HTTPException(
            404, f"the challenger alias names version {challenger}, which the registry lacks"
        )
    return found


@router.put(
    "/challenger",
    response_model=ModelList,
    responses={**ADMIN_PROBLEMS, 404: {"model": Problem}, **UNSIGNED, 503: {"model": Problem}},
)
async def set_challenger(
    body: ChallengerRequest, registry: RegistryDep, redis: RedisDep, caller: AdminDep
) -> ModelList:
    """Make `version` the challenger (admin keys): within seconds the predict workers also
    score a share of the champion's online rows with it (IRISQ_SHADOW_SHARE, default all),
    clients still get the champion's answers, and the agreement shows here."""
    del caller
    version = str(body.version)
    await _trusted(registry, version)
    if version == await registry.champion():
        raise HTTPException(
            409, f"version {version} is the champion: a challenger must be another version"
        )
    await registry.make_challenger(version)
    return await _listed(registry, redis)


@router.delete(
    "/challenger",
    response_model=ModelList,
    responses={**ADMIN_PROBLEMS, 503: {"model": Problem}},
)
async def clear_challenger(registry: RegistryDep, redis: RedisDep, caller: AdminDep) -> ModelList:
    """Stop shadow scoring (admin keys): the challenger alias is removed; its figures stay
    readable by the pair's versions until they expire. Clearing when there is none is fine."""
    del caller
    await registry.clear_challenger()
    return await _listed(registry, redis)


@router.get(
    "/{version}",
    response_model=ModelVersion,
    responses={**AUTH_PROBLEMS, 404: {"model": Problem}, 503: {"model": Problem}},
)
async def get_version(
    registry: RegistryDep, caller: CallerDep, version: str = VersionPath
) -> ModelVersion:
    """One registered version: what it was trained with, the gate's decision, its run in
    MLflow (`run_url`), and whether it is the champion or the challenger. A prediction's
    `model_version` is read here."""
    del caller
    found = await registry.described(version)
    if found is None:
        raise HTTPException(404, f"model {registry.model_name!r} has no version {version}")
    return found


@router.post(
    "/{version}/promote",
    response_model=ModelList,
    responses={**ADMIN_PROBLEMS, 404: {"model": Problem}, **UNSIGNED, 503: {"model": Problem}},
)
async def promote_version(
    registry: RegistryDep, redis: RedisDep, caller: AdminDep, version: str = VersionPath
) -> ModelList:
    """Make `version` the champion now, without the quality gate (admin keys): a rollback,
    a version judged better than its test accuracy says, or the challenger once its
    agreement convinces. A promoted challenger stops being the challenger. Workers follow
    within seconds."""
    del caller
    await _trusted(registry, version)
    await registry.promote(version)
    if (await registry.aliases()).challenger == version:
        await registry.clear_challenger()
    return await _listed(registry, redis)
