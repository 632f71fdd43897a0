"""The irisq API: `uvicorn api.main:create_app --factory`."""

from __future__ import annotations

import functools
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from api import invocation_schema, metrics, problems
from api.admission import Admission
from api.batching import MicroBatcher
from api.bodies import add_documented_schemas
from api.guard import Guard
from api.idempotency import IdempotencyKeys
from api.listing import Cursors
from api.ratelimit import KeyRateLimiter
from api.readiness import ReadinessProbe
from api.registry import RegistryReader
from api.routes import (
    batches,
    events,
    health,
    invocations,
    jobs,
    me,
    models,
    predictions,
    training,
)
from api.submission import send_group
from api.waiting import JobWaiter
from irisq.ids import JobIds
from irisq.jobs import JobStore
from irisq.keys import OPEN_WARNING, Caller, KeyRing
from irisq.logs import configure
from irisq.queueing import make_celery
from irisq.results import ResultFiles
from irisq.settings import Settings, get_settings

logger = logging.getLogger("irisq.api")

DESCRIPTION = """
Predict the species of Iris flowers from four measurements in centimetres.

Submissions answer `202` with a job id; poll `GET /v1/jobs/{job_id}` for the result.
Errors are RFC 9457 problem details naming the field at fault.

Calls under `/v1` take an API key, `Authorization: Bearer <key>`, unless the API runs open
(no keys configured: local development only). Keys with the `predict` role submit and read
their own jobs; `admin` keys also train, promote, and see every job.
"""


SCORING_DESCRIPTION = """
MLflow's scoring protocol without an API key, for clients that cannot send one (MLflow's
`ScoringServerClient`, tools built on it). Every request counts as the key named by
`IRISQ_SCORING_CALLER` (`predict` role): its rate limit, its quotas. Bind it to the internal
network only; the public API at port 8002 keeps asking for keys.
"""


def _add_schemas(document: dict[str, Any]) -> None:
    """The schemas the routes that read their own bodies refer to."""
    add_documented_schemas(document)
    invocation_schema.add_components(document)


class OpenApiRefusedError(RuntimeError):
    """Production settings without API keys."""


class ScoringListenerOffError(RuntimeError):
    """The keyless scoring listener was started without being configured."""


def create_scoring_app(settings: Settings | None = None) -> FastAPI:
    """The keyless scoring listener: `uvicorn api.main:create_scoring_app --factory`.

    Off unless `IRISQ_SCORING_PORT` is set: an open door must be opened on purpose."""
    settings = settings or get_settings()
    if settings.scoring_port is None:
        raise ScoringListenerOffError(
            "IRISQ_SCORING_PORT is not set: the keyless scoring listener stays off. Set it "
            "(and bind IRISQ_SCORING_HOST to an internal interface) to serve MLflow clients "
            "that cannot send an API key."
        )
    return create_app(settings, keyless=Caller(name=settings.scoring_caller, role="predict"))


def create_app(settings: Settings | None = None, keyless: Caller | None = None) -> FastAPI:
    """Build the API for `settings` (the environment's when not given).

    `keyless`: the scoring listener's caller; the app then serves MLflow's scoring protocol
    (and the probes) only, to anyone who reaches it, as that caller."""
    settings = settings or get_settings()
    if settings.log_format == "json":  # text stays uvicorn's own, readable under honcho
        configure("api", "json")
    keys = KeyRing(settings.api_keys)
    job_ids = JobIds(settings.signing_key())  # refuses to start without the secret
    if keys.open and keyless is None:
        if settings.env == "production":
            raise OpenApiRefusedError(
                "IRISQ_ENV=production and IRISQ_API_KEYS is empty: refusing to serve an open "
                "API. Make a key with `python -m irisq.keys new --name NAME --role admin`."
            )
        logger.warning(OPEN_WARNING)

    # Connects lazily, on first use: building the app never waits for Redis. One quick
    # retry, not redis-py's default backoff: a submission while Redis is down must get its
    # 503 within a couple of seconds.
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=1,
        socket_timeout=5,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), retries=1),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.keys = keys
        app.state.job_ids = job_ids
        app.state.redis = client
        # The same Redis for the calls made on the event loop (guard, waits, micro-batches).
        app.state.async_redis = aioredis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=1,
            socket_timeout=5,
            retry=AsyncRetry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), retries=1),
        )
        app.state.rate_limiter = KeyRateLimiter(
            app.state.async_redis, settings.rate_limit_per_second
        )
        app.state.admission = Admission(app.state.async_redis, settings.redis_admission_fraction)
        app.state.jobs = JobStore(client, settings.job_ttl_seconds, settings.max_attempts)
        app.state.cursors = Cursors(settings.signing_key())
        app.state.idempotency = IdempotencyKeys(app.state.async_redis)
        app.state.results = ResultFiles(settings.batch_dir, settings.inline_result_max_bytes)
        app.state.celery = make_celery(settings, main="irisq-api")
        app.state.registry = RegistryReader(
            settings.mlflow_tracking_uri,
            settings.model_name,
            settings.champion_alias,
            settings.registry_timeout_seconds,
            settings.signing_key(),
        )
        app.state.readiness = ReadinessProbe(
            app.state.async_redis,
            app.state.registry,
            app.state.admission,
            keys.open,
        )
        app.state.waiter = JobWaiter(settings.redis_url)
        await app.state.waiter.start()
        app.state.batcher = MicroBatcher(
            functools.partial(
                send_group, app.state.celery, app.state.jobs, app.state.async_redis, settings
            ),
            max_rows=settings.micro_batch_max_rows,
            max_delay_seconds=settings.micro_batch_max_delay_ms / 1000,
            slots=settings.micro_batch_slots,
            on_group=app.state.observe_group,
            ends_announced=lambda: app.state.waiter.listening,
        )
        app.state.waiter.on_end(app.state.batcher.job_ended)
        # Everything made so far lives as long as the process: out of the collector's sight,
        # a full collection scans only what requests leave behind. Without this, each one
        # stopped the API for ~40 ms (measured), the p99 of a loaded minute.
        gc.collect()
        gc.freeze()
        yield
        await app.state.waiter.close()
        await app.state.async_redis.aclose()
        await app.state.registry.close()
        client.close()

    app = FastAPI(
        title="irisq" if keyless is None else "irisq scoring listener",
        version="1.0.0",
        description=DESCRIPTION if keyless is None else SCORING_DESCRIPTION,
        lifespan=lifespan,
        # Operation ids are the route functions' names (`get_job`, `create_prediction`): what
        # a generated client calls its functions.
        generate_unique_id_function=lambda route: route.name,
    )
    # Outermost last: the request timer, then CORS (its preflights and headers on every
    # answer), then the guard, which refuses before anything is read or parsed.
    app.add_middleware(Guard, settings=settings, keys=keys, state=app.state, keyless=keyless)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Prefer",
                "Idempotency-Key",
                "Last-Event-ID",
            ],
            expose_headers=["Location", "Link", "Idempotent-Replayed", "Retry-After"],
        )
    app.state.metrics = metrics.instrument(app, client)
    app.state.observe_group = metrics.micro_batch_observer(app.state.metrics)
    problems.install(app)
    problems.document(app, open_api=keys.open or keyless is not None, extra=_add_schemas)
    served = (
        predictions,
        batches,
        training,
        jobs,
        events,
        models,
        me,
        health,
        invocations,
        metrics,
    )
    routers = [m.router for m in (served if keyless is None else (health, invocations, metrics))]
    for router in routers:
        app.include_router(router)
    problems.index_methods(app, routers)
    return app
