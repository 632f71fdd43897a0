"""Every prediction's lifecycle (worker.grouped), on a real Redis and a real registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from irisq import metrics
from irisq.batch_storage import LocalStorage
from irisq.job_types import Job, JobKind, JobStatus, PredictionResult
from irisq.jobs import JobStore
from irisq.results import ResultFiles
from irisq.settings import Settings
from tests.worker.conftest import redis_database
from worker.grouped import run_group
from worker.inference import ModelCache
from worker.registry import Registry
from worker.training import train_and_register

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.3, 3.3, 6.0, 2.5]


@pytest.fixture(scope="module")
def cache(sqlite_settings: Settings) -> ModelCache:
    train_and_register("logistic_regression", {}, sqlite_settings)  # the first is champion
    return ModelCache(Registry(sqlite_settings), refresh_seconds=60)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A Redis database of its own: the job metrics counted here are this test's only."""
    with redis_database(redis_url, 10) as client:
        yield client


@pytest.fixture
def files(tmp_path: Path) -> ResultFiles:
    return ResultFiles(LocalStorage(tmp_path), inline_max_bytes=100_000)


def _queued(store: JobStore, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    store.create_many(JobKind.PREDICTION, dict.fromkeys(ids), dict.fromkeys(ids))
    return ids


def _job(store: JobStore, job_id: str) -> Job:
    job = store.get(job_id)
    assert job is not None
    return job


def _ends(client: redis.Redis) -> dict[str, float]:
    """Prediction jobs counted in the job metrics, by how they ended."""
    return {
        status: buckets[-1][1]
        for kind, status, buckets, _ in metrics.job_histograms(client)
        if kind == JobKind.PREDICTION
    }


def test_each_job_gets_its_own_rows_and_a_second_delivery_changes_nothing(
    client: redis.Redis, cache: ModelCache, files: ResultFiles
) -> None:
    store = JobStore(client, ttl_seconds=60)
    setosa, virginica, missing, canceled = _queued(store, 4)
    store.cancel(canceled, by="test")  # before its delivery: scored with the others, not stored
    members = [
        [setosa, [SETOSA], "champion"],
        [virginica, [VIRGINICA, VIRGINICA], "champion"],
        [canceled, [VIRGINICA], "champion"],
        [missing, [SETOSA], "999"],  # a version the registry does not have
        ["../etc", [SETOSA], "champion"],  # not a job id: refused, never started
    ]

    run_group(store, cache, files, members)

    version = cache.champion_version()
    first = {job_id: _job(store, job_id) for job_id in (setosa, virginica, missing, canceled)}
    for job_id, species in ((setosa, ["setosa"]), (virginica, ["virginica"] * 2)):
        result = first[job_id].result
        assert isinstance(result, PredictionResult)
        assert result.model_version == version
        assert [p.species for p in result.predictions] == species
    error = first[missing].error
    assert error is not None
    assert (first[missing].status, error.type) == (JobStatus.FAILED, "model_not_found")
    assert (first[canceled].status, first[canceled].result) == (JobStatus.CANCELED, None)
    assert _ends(client) == {"succeeded": 2, "failed": 1}
    counted = {species: rows for _, species, rows in metrics.predictions(client)}
    assert counted == {"setosa": 1, "virginica": 2}  # the canceled job's row is not counted

    run_group(store, cache, files, members)  # delivered again (a worker died before its ack)

    assert {job_id: _job(store, job_id) for job_id in first} == first
    assert _ends(client) == {"succeeded": 2, "failed": 1}
    assert {species: rows for _, species, rows in metrics.predictions(client)} == counted


class _Watched(ModelCache):
    """The cache, noting each model asked of it."""

    def __init__(self, cache: ModelCache) -> None:
        self.__dict__.update(cache.__dict__)
        self.asked: list[str] = []

    def get(self, reference: str = "champion") -> tuple[str, object]:
        self.asked.append(reference)
        return super().get(reference)


@pytest.mark.parametrize("redelivered", [True, False], ids=["redelivered", "sent again"])
def test_a_lone_job_delivered_too_many_times_fails_without_running(
    client: redis.Redis, cache: ModelCache, files: ResultFiles, redelivered: bool
) -> None:
    store = JobStore(client, ttl_seconds=60, max_attempts=1)
    [job_id] = _queued(store, 1)
    store.start(job_id)  # the one attempt allowed: its worker was killed

    # Redis gives back the message of a killed worker marked redelivered: its jobs may be
    # what killed it, so none is scored before its attempts are known to remain. A message
    # sent afresh (the reconciler's) is scored while its start is applied, and dropped.
    watched = _Watched(cache)
    run_group(store, watched, files, [[job_id, [SETOSA], "champion"]], redelivered=redelivered)

    job = _job(store, job_id)
    assert (job.status, job.error.type if job.error else None) == (
        JobStatus.FAILED,
        "too_many_attempts",
    )
    assert _ends(client) == {"failed": 1}
    assert watched.asked == ([] if redelivered else ["champion"])


class _CanceledWhileScoring(ModelCache):
    """A cache under which the job is canceled once its scoring has begun."""

    def __init__(self, cache: ModelCache, store: JobStore, job_id: str) -> None:
        self.__dict__.update(cache.__dict__)
        self.store, self.job_id = store, job_id

    def get(self, reference: str = "champion") -> tuple[str, object]:
        self.store.cancel(self.job_id, by="test")
        return super().get(reference)


def test_a_job_canceled_while_scored_keeps_its_cancel(
    client: redis.Redis, cache: ModelCache, files: ResultFiles
) -> None:
    store = JobStore(client, ttl_seconds=60)
    [job_id] = _queued(store, 1)

    run_group(store, _CanceledWhileScoring(cache, store, job_id), files, [[job_id, [SETOSA], "1"]])

    job = _job(store, job_id)
    assert (job.status, job.result) == (JobStatus.CANCELED, None)  # the first outcome won
    assert _ends(client) == {"dropped": 1}
