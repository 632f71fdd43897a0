"""Job records on a real (private) Redis."""

from __future__ import annotations

import redis

from devstack.processes import wait_for
from irisq.jobs import JobKind, JobStatus, JobStore, StartOutcome


def test_a_job_goes_from_queued_to_succeeded(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=60)

    job = store.create(JobKind.PREDICTION)
    assert store.get(job.job_id) == job
    assert job.status is JobStatus.QUEUED

    assert store.start(job.job_id, stage="scoring") is StartOutcome.STARTED
    store.progress(job.job_id, 0.5)
    running = store.get(job.job_id)
    assert running is not None
    assert (running.status, running.progress, running.stage, running.attempts) == (
        JobStatus.RUNNING,
        0.5,
        "scoring",
        1,
    )

    store.succeed(job.job_id, {"model_version": "1", "predictions": []})
    done = store.get(job.job_id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.progress == 1
    assert done.result == {"model_version": "1", "predictions": []}
    assert done.finished_at is not None


def test_a_finished_job_is_not_started_again(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=60)
    job = store.create(JobKind.TRAINING)
    store.start(job.job_id)
    store.fail(job.job_id, "model_not_found", "no such version")

    assert store.start(job.job_id) is StartOutcome.SKIPPED
    failed = store.get(job.job_id)
    assert failed is not None
    assert failed.error is not None
    assert (failed.status, failed.error.type) == (JobStatus.FAILED, "model_not_found")


def test_unknown_and_expired_jobs_are_gone_and_stay_gone(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=1)
    job = store.create(JobKind.PREDICTION)

    assert store.get("no-such-job") is None
    wait_for(lambda: store.get(job.job_id) is None, 5, "the record expired")
    store.succeed(job.job_id, {"late": True})  # a worker finishing after expiry
    store.progress(job.job_id, 0.5, "scoring")
    assert store.start(job.job_id) is StartOutcome.SKIPPED
    assert store.get(job.job_id) is None
    assert redis_client.exists(store.key(job.job_id)) == 0  # no half record left behind


def test_progress_is_clamped_to_zero_one(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=60)
    job = store.create(JobKind.PREDICTION)

    store.progress(job.job_id, 1.7)

    record = store.get(job.job_id)
    assert record is not None
    assert record.progress == 1.0
