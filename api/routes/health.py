"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.deps import ReadinessDep
from api.readiness import Readiness

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The API process is up."""

    status: str = "ok"


@router.get("/healthz", response_model=Health)
async def get_health() -> Health:
    """Liveness: the API process answers."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def get_readiness(probe: ReadinessDep, response: Response) -> Readiness:
    """Readiness of each part the service needs (checked at most every 2 s); 503 names the
    parts that keep predictions from being served."""
    readiness = await probe.current()
    if not readiness.ready:
        response.status_code = 503
    return readiness
