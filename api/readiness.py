"""Readiness: what the service can do now, checked at most every two seconds.

Anyone may ask `/readyz` (load balancers do, many times a second), so the answer is cached
and computed by one request at a time on the event loop; nobody else waits for it, and no
thread is held while the registry does not answer (its calls time out quickly).

Ready means predictions can be served: Redis answers, a predict worker is alive and a
champion is known. Train and callbacks workers are reported, not required. The MLflow
registry being unreachable is reported but does not take the API out of rotation: workers
go on with their local copy of the champion.
"""

from __future__ import annotations

import asyncio
import logging
import time

import anyio
import redis.asyncio as aioredis
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from api.admission import Admission
from api.problems import ServiceUnavailableError
from api.registry import RegistryReader
from irisq.batch_storage import BatchStorage, StorageRefusedError, StorageUnavailableError
from irisq.keys import OPEN_WARNING
from irisq.tasks import PREDICT_QUEUE, WORKER_QUEUES
from irisq.workers import live_workers_async

logger = logging.getLogger(__name__)

CACHE_SECONDS = 2.0


class Check(BaseModel):
    """One dependency's state, in words."""

    ok: bool
    detail: str


class Readiness(BaseModel):
    """Ready when Redis answers, a predict worker is alive and a champion is known."""

    ready: bool
    auth: str = Field(description="`api_keys`, or `open` when no keys are configured.")
    warnings: list[str] = Field(default_factory=list)
    checks: dict[str, Check]
    missing: list[str] = Field(
        default_factory=list, description="The checks that keep predictions from being served."
    )
    checked_at: float = Field(description="When this was checked (epoch seconds).")


class ReadinessProbe:
    def __init__(
        self,
        client: aioredis.Redis,
        registry: RegistryReader,
        admission: Admission,
        storage: BatchStorage,
        open_api: bool,
    ) -> None:
        self._storage = storage
        self._client = client
        self._registry = registry
        self._admission = admission
        self._open = open_api
        self._last: Readiness | None = None
        self._champion: str | None = None  # the last one the registry named
        self._checking: asyncio.Task[Readiness] | None = None

    async def current(self) -> Readiness:
        if self._last is not None and time.time() - self._last.checked_at < CACHE_SECONDS:
            return self._last
        if self._checking is None or self._checking.done():
            self._checking = asyncio.create_task(self._check())
        # Shielded: a caller that goes away does not cancel the check the others wait for.
        return await asyncio.shield(self._checking)

    async def _check(self) -> Readiness:
        checks = await self._redis_checks()
        checks.update(await self._registry_checks())
        checks["batch_storage"] = await self._storage_check()
        required = ["redis", f"{PREDICT_QUEUE}_workers", "champion"]
        warnings = [OPEN_WARNING] if self._open else []
        if checks["redis"].ok:
            await self._admission.refresh()
            warnings += self._admission.warnings()
        missing = [name for name in required if not checks[name].ok]
        self._last = Readiness(
            ready=not missing,
            missing=missing,
            auth="open" if self._open else "api_keys",
            warnings=warnings,
            checks=checks,
            checked_at=time.time(),
        )
        return self._last

    async def _redis_checks(self) -> dict[str, Check]:
        checks: dict[str, Check] = {}
        try:
            server = await self._client.info("server")
            version = tuple(int(p) for p in str(server.get("redis_version", "0")).split(".")[:2])
            checks["redis"] = (
                Check(ok=True, detail="reachable")
                if version >= (7, 0)
                else Check(ok=False, detail="Redis 7 or later (or Valkey) is needed")
            )
            for queue in WORKER_QUEUES:
                workers = await live_workers_async(self._client, queue)
                checks[f"{queue}_workers"] = Check(
                    ok=bool(workers),
                    # How many, not their host names: anyone may read this.
                    detail=f"{len(workers)} alive"
                    if workers
                    else f"no worker consumes the '{queue}' queue",
                )
        except RedisError as exc:
            checks["redis"] = Check(ok=False, detail=f"unreachable ({type(exc).__name__})")
            for queue in WORKER_QUEUES:
                checks[f"{queue}_workers"] = Check(ok=False, detail="unknown while Redis is down")
        return checks

    async def _storage_check(self) -> Check:
        """Batches and large results need it; online predictions do not, so it is reported,
        not required. In words anyone may read: no endpoint, no bucket."""
        try:
            await anyio.to_thread.run_sync(self._storage.check)
        except StorageRefusedError as exc:
            logger.warning("batch storage: %s", exc)
            return Check(ok=False, detail="refuses irisq's credentials or bucket: uploads get 503")
        except StorageUnavailableError as exc:
            logger.warning("batch storage: %s", exc)
            return Check(ok=False, detail="unreachable: uploads get 503 until it is back")
        return Check(ok=True, detail="writable")

    async def _registry_checks(self) -> dict[str, Check]:
        try:
            self._champion = await self._registry.champion()
        except ServiceUnavailableError as exc:
            last = self._champion
            return {
                "registry": Check(ok=False, detail=exc.detail),
                "champion": Check(
                    ok=last is not None,
                    detail=f"version {last} when last seen; workers serve their local copy"
                    if last
                    else "unknown: the registry cannot be reached",
                ),
            }
        champion = self._champion
        return {
            "registry": Check(ok=True, detail="reachable"),
            "champion": Check(
                ok=champion is not None,
                detail=f"version {champion}" if champion else "no champion registered yet",
            ),
        }
