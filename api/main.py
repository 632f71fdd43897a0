"""The irisq API: `uvicorn api.main:create_app --factory`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import metrics, problems
from api.registry import RegistryReader
from api.routes import batches, health, jobs, models, predictions, training
from irisq.jobs import JobStore
from irisq.logs import configure
from irisq.queueing import make_celery
from irisq.settings import Settings, get_settings

logger = logging.getLogger("irisq.api")

DESCRIPTION = """
Predict the species of Iris flowers from four measurements in centimetres.

Submissions answer `202` with a job id; poll `GET /v1/jobs/{job_id}` for the result.
Errors are RFC 9457 problem details naming the field at fault.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API for `settings` (the environment's when not given)."""
    settings = settings or get_settings()
    if settings.log_format == "json":  # text stays uvicorn's own, readable under honcho
        configure("api", "json")

    # Connects lazily, on first use: building the app never waits for Redis.
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.redis = client
        app.state.jobs = JobStore(client, settings.job_ttl_seconds)
        app.state.celery = make_celery(settings, main="irisq-api")
        app.state.registry = RegistryReader(
            settings.mlflow_tracking_uri, settings.model_name, settings.champion_alias
        )
        yield
        app.state.registry.close()
        client.close()

    app = FastAPI(
        title="irisq",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.state.metrics = metrics.instrument(app, client)
    problems.install(app)
    for module in (predictions, batches, training, jobs, models, health, metrics):
        app.include_router(module.router)
    return app
