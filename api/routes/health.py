"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from api.deps import RedisDep, RegistryDep
from api.problems import ServiceUnavailableError
from irisq.keys import OPEN_WARNING
from irisq.tasks import QUEUES
from irisq.workers import live_workers

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The API process is up."""

    status: str = "ok"


class Check(BaseModel):
    """One dependency's state, in words."""

    ok: bool
    detail: str


class Readiness(BaseModel):
    """Ready when Redis answers, every queue has a worker, and a champion is registered."""

    ready: bool
    auth: str = Field(description="`api_keys`, or `open` when no keys are configured.")
    warnings: list[str] = Field(default_factory=list)
    checks: dict[str, Check]


@router.get("/healthz", response_model=Health)
def get_health() -> Health:
    """Liveness: the API process answers."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def get_readiness(
    request: Request, response: Response, client: RedisDep, registry: RegistryDep
) -> Readiness:
    """Readiness of each part the service needs; 503 names the parts that are not ready."""
    checks: dict[str, Check] = {}
    try:
        client.ping()
        checks["redis"] = Check(ok=True, detail="reachable")
        for queue in QUEUES:
            workers = live_workers(client, queue)
            checks[f"{queue}_workers"] = Check(
                ok=bool(workers),
                detail=", ".join(workers) if workers else f"no worker consumes the '{queue}' queue",
            )
    except Exception as exc:
        checks["redis"] = Check(ok=False, detail=f"unreachable: {exc}")
        for queue in QUEUES:
            checks[f"{queue}_workers"] = Check(ok=False, detail="unknown while Redis is down")
    try:
        champion = registry.champion()
        checks["champion"] = Check(
            ok=champion is not None,
            detail=f"version {champion}" if champion else "no champion registered yet",
        )
    except ServiceUnavailableError as exc:
        checks["champion"] = Check(ok=False, detail=exc.detail)
    ready = all(check.ok for check in checks.values())
    if not ready:
        response.status_code = 503
    is_open = request.app.state.keys.open
    return Readiness(
        ready=ready,
        auth="open" if is_open else "api_keys",
        warnings=[OPEN_WARNING] if is_open else [],
        checks=checks,
    )
