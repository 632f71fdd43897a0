"""Dependencies of the route handlers, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated

import redis
from celery import Celery
from fastapi import Depends, Request

from api.registry import RegistryReader
from irisq.jobs import JobStore
from irisq.settings import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _redis(request: Request) -> redis.Redis:
    client: redis.Redis = request.app.state.redis
    return client


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
JobStoreDep = Annotated[JobStore, Depends(_jobs)]
QueueDep = Annotated[Celery, Depends(_queue)]
RegistryDep = Annotated[RegistryReader, Depends(_registry)]
