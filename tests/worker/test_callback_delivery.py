"""worker.callbacks' plain functions in this process, on a Redis database no worker consumes:
claims, the retry window, the dispatcher's backpressure, the body, the backoff."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.processes import free_port, wait_for
from irisq.batch_storage import LocalStorage
from irisq.jobs import CALLBACKS_DUE
from irisq.queueing import make_celery
from irisq.results import ResultFiles
from irisq.settings import Settings
from irisq.tasks import CALLBACKS_QUEUE
from tests.support.callbacks import Place, new_job, place_in, prediction_result
from tests.support.webhook_receiver import receiving
from worker.callbacks import (
    MAX_BODY_BYTES,
    MAX_DELAY_SECONDS,
    MAX_WAITING,
    claim_due,
    deliver,
    dispatch_once,
    event_body,
    next_delay,
)


@pytest.fixture
def idle(redis_url: str, tmp_path: Path) -> Place:
    return place_in(redis_url, 6, tmp_path)


def _settings(place: Place, **extra: object) -> Settings:
    return Settings(
        redis_url=place.url,
        batch_dir=place.logs / "batches",
        webhook_timeout_seconds=1,
        webhook_lease_seconds=2,
        **extra,  # type: ignore[arg-type]
    )


def test_a_stale_or_repeated_claim_makes_no_attempt(idle: Place) -> None:
    store, settings = idle.store, _settings(idle)
    results = ResultFiles(LocalStorage(settings.batch_dir), settings.inline_result_max_bytes)
    with receiving(free_port()) as receiver:
        job_id = new_job(store, f"{receiver.url}/once")
        store.succeed(job_id, prediction_result())
        claim, *claimed = claim_due(store.redis, 30)
        assert claimed == [job_id]
        assert claim_due(store.redis, 30) == []  # held by the claim

        assert deliver(store, results, settings, job_id, "1.5") == "stale"
        assert deliver(store, results, settings, job_id, claim) == "delivered"
        assert deliver(store, results, settings, job_id, claim) == "stale"  # sent twice
        deliveries = receiver.deliveries

    assert len(deliveries) == 1
    assert store.redis.zscore(CALLBACKS_DUE, job_id) is None


def test_retries_end_with_the_window_and_the_last_one_is_at_its_end(idle: Place) -> None:
    store, settings = idle.store, _settings(idle, webhook_retry_seconds=1.5)
    results = ResultFiles(LocalStorage(settings.batch_dir), settings.inline_result_max_bytes)
    with receiving(free_port(), [503] * 100) as receiver:
        job_id = new_job(store, f"{receiver.url}/busy")
        store.succeed(job_id, prediction_result())
        outcome = "pending"
        while outcome == "pending":
            claim = wait_for(lambda: claim_due(store.redis, 30), 5, "the next attempt due")[0]
            outcome = deliver(store, results, settings, job_id, claim)
        deliveries = receiver.deliveries
    job = store.get(job_id)

    assert job is not None
    assert job.callback is not None
    assert job.finished_at is not None
    assert outcome == "failed"
    assert job.callback.attempts == len(deliveries) >= 2
    assert job.callback.last_error == f"answered 503; gave up after {len(deliveries)} attempts"
    window_end = job.finished_at.timestamp() + 1.5
    assert deliveries[-2].at < window_end <= deliveries[-1].at + 0.05  # clocks: same machine
    assert store.redis.zscore(CALLBACKS_DUE, job_id) is None


def test_the_dispatcher_stops_claiming_while_deliveries_wait(idle: Place) -> None:
    store, settings = idle.store, _settings(idle)
    app = make_celery(settings)
    job_id = new_job(store, "http://127.0.0.1:9/")
    store.succeed(job_id, prediction_result())
    store.redis.rpush(CALLBACKS_QUEUE, *(["waiting"] * MAX_WAITING))

    assert dispatch_once(store.redis, app, settings) == 0
    store.redis.delete(CALLBACKS_QUEUE)
    assert dispatch_once(store.redis, app, settings) == 1
    assert store.redis.llen(CALLBACKS_QUEUE) == 1  # the task, for the callbacks worker


def test_a_result_too_large_is_left_out_and_one_in_a_file_is_read(idle: Place) -> None:
    store, settings = idle.store, _settings(idle)
    results = ResultFiles(LocalStorage(settings.batch_dir), inline_max_bytes=100)
    large = new_job(store, "https://example.com/")
    store.succeed(large, prediction_result(rows=4000))  # ~400 KB of JSON
    in_file = new_job(store, "https://example.com/")
    placed = results.place(in_file, prediction_result(rows=3))
    assert not isinstance(placed, str)
    store.succeed(in_file, placed)

    large_job, file_job = store.get(large), store.get(in_file)
    assert large_job is not None
    assert file_job is not None
    body = event_body(large_job, results)
    event = json.loads(body)
    assert len(body) <= MAX_BODY_BYTES
    assert (event["result_omitted"], event["data"]["result"]) == (True, None)
    assert event["data"]["status"] == "succeeded"
    event = json.loads(event_body(file_job, results))
    assert event["result_omitted"] is False
    assert len(event["data"]["result"]["predictions"]) == 3


def test_the_wait_doubles_with_full_jitter_and_is_capped(idle: Place) -> None:
    settings = _settings(idle, webhook_backoff_seconds=10)
    for attempts, ceiling in ((1, 10), (2, 20), (3, 40), (9, 2560), (10, 3600), (40, 3600)):
        waits = [next_delay(attempts, settings) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # spread over the range, not fixed
    assert next_delay(1, settings, asked=120) == 120  # Retry-After is honoured
    assert next_delay(1, settings, asked=10**6) == MAX_DELAY_SECONDS
