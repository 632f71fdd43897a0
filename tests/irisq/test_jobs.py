"""Job records on a real (private) Redis."""

from __future__ import annotations

import json
import uuid
from importlib.resources import files
from pathlib import Path

import pytest
import redis

from devstack.processes import redis_server, wait_for
from irisq.job_types import FINAL_STATUSES, JobKind, JobStatus, PredictionResult
from irisq.jobs import (
    ANNOUNCED_RECORD_MAX_BYTES,
    DONE_CHANNEL,
    JobStore,
    Push,
    StartOutcome,
    parse_announcement,
)


def new_id() -> str:
    return str(uuid.uuid4())


def test_a_job_goes_from_queued_to_succeeded(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=60)

    job = store.create(JobKind.PREDICTION, new_id())
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

    store.succeed(job.job_id, _result("1"))
    done = store.get(job.job_id)
    assert done is not None
    assert done.status is JobStatus.SUCCEEDED
    assert done.progress == 1
    assert done.result == PredictionResult.model_validate_json(_result("1"))
    assert done.finished_at is not None


def test_a_finished_job_is_not_started_again(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=60)
    job = store.create(JobKind.TRAINING, new_id())
    store.start(job.job_id)
    store.fail(job.job_id, "model_not_found", "no such version")

    assert store.start(job.job_id) is StartOutcome.SKIPPED
    failed = store.get(job.job_id)
    assert failed is not None
    assert failed.error is not None
    assert (failed.status, failed.error.type) == (JobStatus.FAILED, "model_not_found")


def test_unknown_and_expired_jobs_are_gone_and_stay_gone(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=1)
    job = store.create(JobKind.PREDICTION, new_id())

    assert store.get("no-such-job") is None
    wait_for(lambda: store.get(job.job_id) is None, 5, "the record expired")
    store.succeed(job.job_id, _result("1"))  # a worker finishing after expiry
    store.progress(job.job_id, 0.5, "scoring")
    assert store.start(job.job_id) is StartOutcome.SKIPPED
    assert store.get(job.job_id) is None
    assert redis_client.exists(store.key(job.job_id)) == 0  # no half record left behind


def test_progress_is_clamped_to_zero_one(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=60)
    job = store.create(JobKind.PREDICTION, new_id())

    store.progress(job.job_id, 1.7)

    record = store.get(job.job_id)
    assert record is not None
    assert record.progress == 1.0


def test_the_lua_scripts_know_every_final_status() -> None:
    """The list is written into the scripts from FINAL_STATUSES, never copied by hand."""
    from irisq import lua

    generated = lua.CONSTANTS["FINAL_STATUSES"]
    assert sorted(generated.strip("{}").split(", ")) == sorted(f"'{s}'" for s in FINAL_STATUSES)
    for script in (lua.START, lua.FINISH, lua.REMOVE_ENDED):
        assert generated in script
    for source in files(lua).iterdir():  # no file spells the list out (one may set 'failed')
        if source.name.endswith(".lua"):
            text = source.read_text(encoding="utf-8")
            assert not all(f"'{s.value}'" in text for s in FINAL_STATUSES), source.name


def test_a_job_is_given_up_after_max_attempts(redis_client: redis.Redis) -> None:
    store = JobStore(redis_client, ttl_seconds=60, max_attempts=3)
    job = store.create(JobKind.BATCH, new_id())

    outcomes = [store.start(job.job_id) for _ in range(4)]

    assert outcomes == [StartOutcome.STARTED] * 3 + [StartOutcome.GAVE_UP]
    failed = store.get(job.job_id)
    assert failed is not None
    assert failed.error is not None
    assert (failed.status, failed.error.type, failed.attempts) == (
        JobStatus.FAILED,
        "too_many_attempts",
        4,
    )
    assert store.start(job.job_id) is StartOutcome.SKIPPED


def test_the_first_outcome_stands(redis_client: redis.Redis) -> None:
    """Two deliveries finishing, or a cancel racing a result: one outcome is stored."""
    store = JobStore(redis_client, ttl_seconds=60)
    job = store.create(JobKind.PREDICTION, new_id(), task={"name": "irisq.predict", "args": []})
    store.start(job.job_id)

    assert store.succeed(job.job_id, _result("1")) is True
    assert store.succeed(job.job_id, _result("2")) is False
    assert store.fail(job.job_id, "internal_error", "late") is False
    assert store.cancel(job.job_id, by="alice") is False

    done = store.get(job.job_id)
    assert done is not None
    assert done.result is not None
    assert (done.status, done.result.model_version) == (JobStatus.SUCCEEDED, "1")
    assert store.task(job.job_id) is None  # the re-send copy goes once the job has ended
    assert job.job_id not in store.queued_before(float("inf"))
    assert job.job_id not in store.running_before(float("inf"))


def test_a_job_end_is_announced_with_its_record_unless_that_is_large(
    redis_client: redis.Redis,
) -> None:
    store = JobStore(redis_client, ttl_seconds=60)
    small, large = (
        store.create(JobKind.PREDICTION, new_id()),
        store.create(JobKind.PREDICTION, new_id()),
    )
    with redis_client.pubsub() as pubsub:  # type: ignore[no-untyped-call]
        pubsub.subscribe(DONE_CHANNEL)
        pubsub.get_message(timeout=2)  # the subscription's confirmation
        store.start(small.job_id)
        store.succeed(small.job_id, _result("1"))
        store.start(large.job_id)
        store.succeed(large.job_id, _result("1", padding="x" * ANNOUNCED_RECORD_MAX_BYTES))
        messages = [pubsub.get_message(timeout=2) for _ in range(2)]

    (small_id, record), (large_id, nothing) = (
        parse_announcement(m["data"]) for m in messages if m is not None
    )
    assert small_id == small.job_id
    assert record is not None
    assert JobStore.parse(record) == store.get(small.job_id)  # the whole record came along
    assert (large_id, nothing) == (large.job_id, None)  # the id alone: read it if waiting


def _result(version: str, **extra: str) -> str:
    """A prediction result's JSON, as a worker stores it (`extra` fields are ignored)."""
    result = {"kind": "prediction", "model_version": version, "model_source": "registry"}
    return json.dumps({**result, "predictions": [], **extra})


def test_jobs_and_their_task_are_written_together_or_not_at_all(
    redis_client: redis.Redis,
) -> None:
    store = JobStore(redis_client, ttl_seconds=60)
    queue = f"queue-{new_id()}"
    first, second, refused = new_id(), new_id(), new_id()
    create, created = store.create_command(
        JobKind.PREDICTION,
        {first: '{"name": "irisq.predict"}', second: None},
        {first: "alice", second: "alice"},
        rows={first: 3, second: 1},
        push=Push(queue, "the task", max_depth=1),
    )
    assert create.run(redis_client) == -1
    assert [store.get(first), store.get(second)] == [created[first], created[second]]
    assert store.task(first) == {"name": "irisq.predict"}
    assert redis_client.lrange(queue, 0, -1) == [b"the task"]
    assert redis_client.hget("irisq:owner:alice:usage", "rows") == b"4"
    assert redis_client.zscore("irisq:jobs:queued", second) is not None

    # The queue holds its one task: the next group is refused whole, its depth answered.
    again, _ = store.create_command(
        JobKind.PREDICTION, {refused: None}, {refused: "alice"}, push=Push(queue, "more", 1)
    )
    assert again.run(redis_client) == 1
    assert store.get(refused) is None
    assert redis_client.llen(queue) == 1
    assert redis_client.zscore("irisq:owner:alice:inflight", refused) is None
    assert redis_client.hget("irisq:owner:alice:usage", "rows") == b"4"


def test_no_job_is_recorded_while_redis_is_full(tmp_path: Path) -> None:
    with redis_server(tmp_path / "redis", maxmemory="4mb") as url:
        client = redis.Redis.from_url(url)
        store = JobStore(client, ttl_seconds=60)
        with pytest.raises(redis.exceptions.OutOfMemoryError):  # noqa: PT012
            for number in range(8192):  # small writes: one refused means memory is past the limit
                client.set(f"filler-{number}", "x" * 1024)
        job_id = new_id()
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            store.create_many(JobKind.PREDICTION, {job_id: None}, {job_id: "alice"})
        assert store.get(job_id) is None
        assert client.zscore("irisq:jobs:all", job_id) is None
        client.close()
