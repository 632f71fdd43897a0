"""Dependencies of the route handlers, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

import redis
import redis.asyncio as aioredis
from celery import Celery
from fastapi import Depends, Request

from api.idempotency import IdempotencyKeys
from api.listing import Cursors
from api.registry import RegistryReader
from irisq.jobs import JobStore
from irisq.settings import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _redis(request: Request) -> redis.Redis:
    client: redis.Redis = request.app.state.redis
    return client


async def _async_redis(request: Request) -> aioredis.Redis:
    client: aioredis.Redis = request.app.state.async_redis
    return client


async def _cursors(request: Request) -> Cursors:
    cursors: Cursors = request.app.state.cursors
    return cursors


async def _idempotency(request: Request) -> IdempotencyKeys:
    keys: IdempotencyKeys = request.app.state.idempotency
    return keys


async def _jobs(request: Request) -> JobStore:
    store: JobStore = request.app.state.jobs
    return store


async def _queue(request: Request) -> Celery:
    queue: Celery = request.app.state.celery
    return queue


async def _registry(request: Request) -> RegistryReader:
    registry: RegistryReader = request.app.state.registry
    return registry


SettingsDep = Annotated[Settings, Depends(_settings)]
RedisDep = Annotated[redis.Redis, Depends(_redis)]
AsyncRedisDep = Annotated[aioredis.Redis, Depends(_async_redis)]
CursorsDep = Annotated[Cursors, Depends(_cursors)]
IdempotencyDep = Annotated[IdempotencyKeys, Depends(_idempotency)]
JobStoreDep = Annotated[JobStore, Depends(_jobs)]
QueueDep = Annotated[Celery, Depends(_queue)]
RegistryDep = Annotated[RegistryReader, Depends(_registry)]
