"""A first champion for an empty registry, so the very first prediction works."""

from __future__ import annotations

import logging
import time

import redis
from celery import Celery

from irisq.algorithms import DEFAULT_ALGORITHM
from irisq.ids import JobIds
from irisq.job_types import JobKind
from irisq.jobs import JobStore
from irisq.queueing import submit
from irisq.settings import Settings
from irisq.tasks import TRAIN_TASK
from worker.registry import Registry

logger = logging.getLogger(__name__)

BOOTSTRAP_LOCK = "irisq:bootstrap-champion"
# Long enough for one default training, so a second train worker starting meanwhile waits.
BOOTSTRAP_LOCK_SECONDS = 600
# MLflow's server takes 8-14 s to start; the train worker may well be up first.
REGISTRY_WAIT_SECONDS = 180


def _wait_for_registry(registry: Registry, deadline: float) -> str | None:
    """The champion version (or None) once the registry answers; raises past the deadline."""
    while True:
        try:
            return registry.champion_version()
        except Exception as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the MLflow registry did not answer: {exc}") from exc
            time.sleep(1)


def ensure_champion(settings: Settings, app: Celery, client: redis.Redis) -> str | None:
    """Queue a default training when no champion exists, or when the champion is not one
    this irisq trained (unsigned: it would never be loaded); returns its job id, if queued.

    A Redis lock makes this happen once however many train workers start together.
    """
    registry = Registry(settings)
    version = _wait_for_registry(registry, time.monotonic() + REGISTRY_WAIT_SECONDS)
    if version is not None and registry.is_trusted(version):
        logger.info("champion is version %s of '%s'", version, settings.model_name)
        return None
    if version is not None:
        logger.warning(
            "the champion, version %s, carries no signature of this irisq and will not be "
            "loaded: training a new one",
            version,
        )
    if not client.set(BOOTSTRAP_LOCK, "1", nx=True, ex=BOOTSTRAP_LOCK_SECONDS):
        logger.info("no champion yet; another worker is already training the first one")
        return None
    store = JobStore(client, settings.job_ttl_seconds)
    job_id = JobIds(settings.signing_key()).new(None)
    job = submit(app, store, JobKind.TRAINING, TRAIN_TASK, [DEFAULT_ALGORITHM, {}], job_id)
    logger.warning(
        "no champion registered: queued a first %s training as job %s",
        DEFAULT_ALGORITHM,
        job.job_id,
    )
    return job.job_id
