"""Per-process resources of a worker: created on first use, after Celery has forked."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import redis

from irisq.batch_storage import BatchStorage, open_storage
from irisq.jobs import JobStore
from irisq.results import ResultFiles
from irisq.settings import get_settings

if TYPE_CHECKING:
    from worker.inference import ModelCache
    from worker.shadow import ShadowScorer


@lru_cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=5)


@lru_cache
def job_store() -> JobStore:
    settings = get_settings()
    return JobStore(redis_client(), settings.job_ttl_seconds, settings.max_attempts)


@lru_cache
def model_cache() -> ModelCache:
    """One cache per worker process: each model is loaded once, then reused by every job."""
    # Imported here: they bring MLflow and scikit-learn, which the callbacks worker (it
    # shares this module for Redis and the job store) never loads.
    from worker.inference import ModelCache
    from worker.registry import Registry

    settings = get_settings()
    # Refreshed in the background: no job ever waits on the registry once a champion is known.
    return ModelCache(Registry(settings), settings.champion_refresh_seconds, background=True)


@lru_cache
def shadow_scorer() -> ShadowScorer:
    """Compares the challenger with this process's champion on the rows it scores."""
    from worker.shadow import ShadowScorer

    return ShadowScorer(model_cache(), redis_client(), get_settings().shadow_share)


def batch_storage() -> BatchStorage:
    return open_storage(get_settings())


@lru_cache
def result_files() -> ResultFiles:
    return ResultFiles(batch_storage(), get_settings().inline_result_max_bytes)
