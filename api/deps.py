"""Dependencies of the route handlers, as `Annotated` aliases: one per shared resource
(api.resources), and `ResourcesDep` for the helpers that take several."""

from __future__ import annotations

from typing import Annotated

import redis
import redis.asyncio as aioredis
from celery import Celery
from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from api.admission import Admission
from api.batching import MicroBatcher
from api.idempotency import IdempotencyKeys
from api.listing import Cursors
from api.ratelimit import KeyRateLimiter
from api.readiness import ReadinessProbe
from api.registry import RegistryReader
from api.resources import Resources, resources_of
from api.waiting import JobWaiter
from irisq.ids import JobIds
from irisq.jobs import JobStore
from irisq.keys import KeyRing
from irisq.results import ResultFiles
from irisq.settings import Settings

# Each reads its resource straight from the app (not through `_resources`): one dependency
# to solve per alias, on every request.


async def _resources(request: Request) -> Resources:
    return resources_of(request.app.state)


async def _settings(request: Request) -> Settings:
    return resources_of(request.app.state).settings


async def _keys(request: Request) -> KeyRing:
    return resources_of(request.app.state).keys


async def _job_ids(request: Request) -> JobIds:
    return resources_of(request.app.state).job_ids


async def _redis(request: Request) -> redis.Redis:
    return resources_of(request.app.state).redis


async def _async_redis(request: Request) -> aioredis.Redis:
    return resources_of(request.app.state).async_redis


async def _rate_limiter(request: Request) -> KeyRateLimiter:
    return resources_of(request.app.state).rate_limiter


async def _admission(request: Request) -> Admission:
    return resources_of(request.app.state).admission


async def _jobs(request: Request) -> JobStore:
    return resources_of(request.app.state).jobs


async def _cursors(request: Request) -> Cursors:
    return resources_of(request.app.state).cursors


async def _idempotency(request: Request) -> IdempotencyKeys:
    return resources_of(request.app.state).idempotency


async def _results(request: Request) -> ResultFiles:
    return resources_of(request.app.state).results


async def _celery(request: Request) -> Celery:
    return resources_of(request.app.state).celery


async def _registry(request: Request) -> RegistryReader:
    return resources_of(request.app.state).registry


async def _readiness(request: Request) -> ReadinessProbe:
    return resources_of(request.app.state).readiness


async def _waiter(request: Request) -> JobWaiter:
    return resources_of(request.app.state).waiter


async def _batcher(request: Request) -> MicroBatcher:
    return resources_of(request.app.state).batcher


async def _metrics(request: Request) -> CollectorRegistry:
    return resources_of(request.app.state).metrics


ResourcesDep = Annotated[Resources, Depends(_resources)]
SettingsDep = Annotated[Settings, Depends(_settings)]
KeyRingDep = Annotated[KeyRing, Depends(_keys)]
JobIdsDep = Annotated[JobIds, Depends(_job_ids)]
RedisDep = Annotated[redis.Redis, Depends(_redis)]
AsyncRedisDep = Annotated[aioredis.Redis, Depends(_async_redis)]
RateLimiterDep = Annotated[KeyRateLimiter, Depends(_rate_limiter)]
AdmissionDep = Annotated[Admission, Depends(_admission)]
JobStoreDep = Annotated[JobStore, Depends(_jobs)]
CursorsDep = Annotated[Cursors, Depends(_cursors)]
IdempotencyDep = Annotated[IdempotencyKeys, Depends(_idempotency)]
ResultsDep = Annotated[ResultFiles, Depends(_results)]
CeleryDep = Annotated[Celery, Depends(_celery)]
RegistryDep = Annotated[RegistryReader, Depends(_registry)]
ReadinessDep = Annotated[ReadinessProbe, Depends(_readiness)]
WaiterDep = Annotated[JobWaiter, Depends(_waiter)]
BatcherDep = Annotated[MicroBatcher, Depends(_batcher)]
MetricsDep = Annotated[CollectorRegistry, Depends(_metrics)]
