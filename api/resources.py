"""The objects the API's routes share (Redis clients, the job store, the Celery app, the
registry reader, the job waiter, the micro-batcher...): made when the app starts, closed
when it stops.

Routes reach them through the typed aliases of api.deps. The guard (api.guard), a pure ASGI
layer below FastAPI's dependencies, reads them with `resources_of`.
"""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import anyio
import redis.asyncio as aioredis
from celery import Celery
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis import Redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry
from starlette.datastructures import State

from api.admission import Admission
from api.batching import MicroBatcher
from api.idempotency import IdempotencyKeys
from api.listing import Cursors
from api.ratelimit import KeyRateLimiter
from api.readiness import ReadinessProbe
from api.registry import RegistryReader
from api.submission import send_group
from api.waiting import JobWaiter
from irisq.batch_storage import (
    BatchStorage,
    StorageRefusedError,
    StorageUnavailableError,
    open_storage,
)
from irisq.ids import JobIds
from irisq.jobs import JobStore
from irisq.keys import KeyRing
from irisq.queueing import make_celery
from irisq.results import ResultFiles
from irisq.settings import Settings

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

# Connect lazily, on first use: building the app never waits for Redis. One quick retry, not
# redis-py's default backoff: a submission while Redis is down must get its 503 within a
# couple of seconds.
_CONNECT_SECONDS = 1
_READ_SECONDS = 5
_BACKOFF = ExponentialWithJitterBackoff(base=0.05, cap=0.2)

logger = logging.getLogger(__name__)


def redis_client(settings: Settings) -> Redis:
    """The Redis client for calls made in threads (job store, queue depth, metrics)."""
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=_CONNECT_SECONDS,
        socket_timeout=_READ_SECONDS,
        retry=Retry(_BACKOFF, retries=1),
    )


def async_redis_client(settings: Settings) -> aioredis.Redis:
    """The same Redis for the calls made on the event loop (guard, waits, micro-batches)."""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=_CONNECT_SECONDS,
        socket_timeout=_READ_SECONDS,
        retry=AsyncRetry(_BACKOFF, retries=1),
    )


async def checked_storage(settings: Settings) -> BatchStorage:
    """The batch storage, refused at start when it refuses irisq (wrong credentials, a bucket
    that cannot be made): better no API than one that accepts uploads it cannot keep. One
    that does not answer yet (it may be starting too) is only reported, by /readyz."""
    storage = open_storage(settings)
    try:
        await anyio.to_thread.run_sync(storage.check)
    except StorageRefusedError as exc:
        raise RuntimeError(f"the API cannot start: {exc}") from None
    except StorageUnavailableError as exc:
        logger.warning("batch storage not reachable at start: %s", exc)
    return storage


@dataclass(frozen=True)
class Resources:
    """One app's shared objects, each made once."""

    settings: Settings
    keys: KeyRing
    job_ids: JobIds
    redis: Redis
    async_redis: aioredis.Redis
    rate_limiter: KeyRateLimiter
    admission: Admission
    jobs: JobStore
    cursors: Cursors
    idempotency: IdempotencyKeys
    results: ResultFiles
    storage: BatchStorage
    celery: Celery
    registry: RegistryReader
    readiness: ReadinessProbe
    waiter: JobWaiter
    batcher: MicroBatcher
    metrics: CollectorRegistry

    @classmethod
    async def open(
        cls,
        settings: Settings,
        keys: KeyRing,
        job_ids: JobIds,
        client: Redis,
        metrics: CollectorRegistry,
        on_group: Callable[[int, int], None],
    ) -> Resources:
        """Make the rest from what the app was built with (its middleware needed those
        first); start the waiter's subscription. `on_group` observes each micro-batch."""
        async_redis = async_redis_client(settings)
        admission = Admission(async_redis, settings.redis_admission_fraction)
        jobs = JobStore(client, settings.job_ttl_seconds, settings.max_attempts)
        celery = make_celery(settings, main="irisq-api")
        registry = RegistryReader(
            settings.mlflow_tracking_uri,
            settings.model_name,
            settings.champion_alias,
            settings.registry_timeout_seconds,
            settings.signing_key(),
            settings.challenger_alias,
            settings.mlflow_ui_url,
        )
        storage = await checked_storage(settings)
        waiter = JobWaiter(settings.redis_url)
        await waiter.start()
        batcher = MicroBatcher(
            functools.partial(send_group, celery, jobs, async_redis, settings),
            max_rows=settings.micro_batch_max_rows,
            max_delay_seconds=settings.micro_batch_max_delay_ms / 1000,
            slots=settings.micro_batch_slots,
            on_group=on_group,
            ends_announced=lambda: waiter.listening,
        )
        waiter.on_end(batcher.job_ended)
        # Logs an evicting Redis as the API starts. Last: it opens a connection, which a
        # start refused above (the batch storage's credentials) would leave unclosed.
        await admission.refresh()
        return cls(
            settings=settings,
            keys=keys,
            job_ids=job_ids,
            redis=client,
            async_redis=async_redis,
            rate_limiter=KeyRateLimiter(async_redis, settings.rate_limit_per_second),
            admission=admission,
            jobs=jobs,
            cursors=Cursors(settings.signing_key()),
            idempotency=IdempotencyKeys(async_redis),
            results=ResultFiles(storage, settings.inline_result_max_bytes),
            storage=storage,
            celery=celery,
            registry=registry,
            readiness=ReadinessProbe(async_redis, registry, admission, storage, keys.open),
            waiter=waiter,
            batcher=batcher,
            metrics=metrics,
        )

    async def close(self) -> None:
        await self.waiter.close()
        await self.async_redis.aclose()
        await self.registry.close()
        self.redis.close()


def lifespan(
    settings: Settings,
    keys: KeyRing,
    job_ids: JobIds,
    client: Redis,
    metrics: CollectorRegistry,
    on_group: Callable[[int, int], None],
) -> Lifespan:
    """The app's lifespan: its `Resources` in `app.state.resources` while it runs."""

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        resources = await Resources.open(settings, keys, job_ids, client, metrics, on_group)
        app.state.resources = resources
        # Everything made so far lives as long as the process: out of the collector's sight,
        # a full collection scans only what requests leave behind. Without this, each one
        # stopped the API for ~40 ms (measured), the p99 of a loaded minute.
        gc.collect()
        gc.freeze()
        yield
        await resources.close()

    return run


def resources_of(state: State) -> Resources:
    """The resources of the app whose state this is, once it has started."""
    resources: Resources = state.resources
    return resources
