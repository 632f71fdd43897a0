"""Models: the registered versions and the champion."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RegistryDep
from api.problems import Problem
from api.registry import ModelList

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelList, responses={503: {"model": Problem}})
def list_models(registry: RegistryDep) -> ModelList:
    """Registered versions, newest first, with algorithm, metrics and the champion marker."""
    return registry.versions()
