"""Models: the registered versions and the champion; promote a version by hand."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi import Path as PathParam

from api.auth import AdminDep, CallerDep
from api.deps import RegistryDep
from api.problems import ADMIN_PROBLEMS, AUTH_PROBLEMS, Problem
from api.registry import ModelList

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get(
    "",
    response_model=ModelList,
    responses={**AUTH_PROBLEMS, 503: {"model": Problem}},
)
async def list_models(registry: RegistryDep, caller: CallerDep) -> ModelList:
    """Registered versions, newest first, with algorithm, metrics and the champion marker."""
    del caller  # any valid key may read the registry
    return await registry.versions()


@router.post(
    "/{version}/promote",
    response_model=ModelList,
    responses={
        **ADMIN_PROBLEMS,
        404: {"model": Problem},
        409: {"model": Problem, "description": "The version was not trained by this irisq."},
        503: {"model": Problem},
    },
)
async def promote_version(
    registry: RegistryDep,
    caller: AdminDep,
    version: str = PathParam(pattern=r"^[1-9][0-9]{0,8}$", description="A registered version."),
) -> ModelList:
    """Make `version` the champion now, without the quality gate (admin keys): a rollback,
    or a version judged better than its test accuracy says. Workers follow within seconds."""
    del caller
    found = await registry.version(version)
    if found is None:
        raise HTTPException(404, f"model {registry.model_name!r} has no version {version}")
    if not registry.is_signed(found):
        raise HTTPException(
            409,
            f"version {version} carries no signature of this irisq (it was not trained here, "
            "or its tags were changed): workers would refuse to load it",
        )
    await registry.promote(version)
    return await registry.versions()
