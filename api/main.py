"""The irisq API: `uvicorn api.main:create_app --factory`."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from api import error_handlers, metrics, openapi_doc
from api.access_log import AccessLog
from api.guard import Guard
from api.resources import lifespan, redis_client
from api.routes import (
    batches,
    events,
    health,
    invocations,
    jobs,
    me,
    models,
    monitoring,
    predictions,
    training,
)
from irisq.ids import JobIds
from irisq.keys import OPEN_WARNING, Caller, KeyRing
from irisq.logs import configure
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
    # uvicorn's loggers too, but not its access log: irisq keeps its own (api.access_log).
    configure("api", settings.log_format)
    keys = KeyRing(settings.api_keys)
    job_ids = JobIds(settings.signing_key())  # refuses to start without the secret
    if keys.open and keyless is None:
        if settings.env == "production":
            raise OpenApiRefusedError(
                "IRISQ_ENV=production and IRISQ_API_KEYS is empty: refusing to serve an open "
                "API. Make a key with `python -m irisq.keys new --name NAME --role admin`."
            )
        logger.warning(OPEN_WARNING)

    client = redis_client(settings)
    registry = metrics.new_registry(client)
    on_group = metrics.micro_batch_observer(registry)
    app = FastAPI(
        title="irisq" if keyless is None else "irisq scoring listener",
        version="1.0.0",
        description=DESCRIPTION if keyless is None else SCORING_DESCRIPTION,
        lifespan=lifespan(settings, keys, job_ids, client, registry, on_group),
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
    metrics.time_requests(app, registry, AccessLog(settings.access_log))
    openapi_doc.document(app, open_api=keys.open or keyless is not None)
    served = (
        predictions,
        batches,
        training,
        jobs,
        events,
        models,
        monitoring,
        me,
        health,
        invocations,
        metrics,
    )
    routers = [m.router for m in (served if keyless is None else (health, invocations, metrics))]
    for router in routers:
        app.include_router(router)
    error_handlers.install(app, routers)
    return app
