"""Callbacks delivered by a real callbacks worker (Celery, threads) to a real HTTP receiver.

Each test's worker has a Redis database of its own on the private Redis, so workers started
with different settings never deliver each other's callbacks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.processes import free_port, wait_for
from irisq.jobs import CALLBACKS_DUE
from tests.support.callbacks import (
    BOB_SECRET,
    Place,
    attempted,
    ended,
    new_job,
    place_in,
    prediction_result,
)
from tests.support.webhook_receiver import Delivery, documented_verify, receiving
from worker.callbacks import message_id

SECRET = os.environ["IRISQ_WEBHOOK_SECRET"]  # tests/conftest.py sets one for the whole run
verify = documented_verify()


@pytest.fixture(scope="module")
def place(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    """Database 3, with one callbacks worker for the module (development mode)."""
    here = place_in(redis_url, 3, tmp_path_factory.mktemp("callbacks"))
    with here.worker("callbacks"):
        yield here


def _for(deliveries: list[Delivery], job_id: str) -> list[Delivery]:
    return [d for d in deliveries if d.headers["webhook-id"] == message_id(job_id)]


def test_every_delivery_is_signed_and_verifies(place: Place) -> None:
    store = place.store
    with receiving(free_port()) as receiver:
        done = new_job(store, f"{receiver.url}/hooks/irisq?tenant=7")
        failed = new_job(store, f"{receiver.url}/hooks/irisq")
        canceled = new_job(store, f"{receiver.url}/hooks/irisq")
        bobs = new_job(store, f"{receiver.url}/hooks/bob", owner="bob")
        store.succeed(done, prediction_result())
        store.fail(failed, "model_not_found", "no such version")
        store.cancel(canceled, "alice")
        store.succeed(bobs, prediction_result())
        for job_id in (done, failed, canceled, bobs):
            state = ended(store, job_id, "delivered")
            assert (state.attempts, state.last_status, state.last_error) == (1, 204, None)
            assert state.delivered_at is not None
            assert store.redis.zscore(CALLBACKS_DUE, job_id) is None
        deliveries = receiver.deliveries

    assert len(deliveries) == 4
    for job_id, kind in ((done, "succeeded"), (failed, "failed"), (canceled, "canceled")):
        (delivery,) = _for(deliveries, job_id)
        assert verify(SECRET, delivery.headers, delivery.body)
        assert not verify(SECRET, delivery.headers, delivery.body.replace(b"}", b" }", 1))
        assert not verify(BOB_SECRET, delivery.headers, delivery.body)
        event = json.loads(delivery.body)
        assert event["type"] == f"job.{kind}"
        assert event["data"]["job_id"] == job_id
        assert event["data"]["status"] == kind
        assert "callback" not in event["data"]
        assert delivery.headers["content-type"] == "application/json"
    (bob,) = _for(deliveries, bobs)
    assert verify(BOB_SECRET, bob.headers, bob.body)  # a key's own secret signs its jobs
    assert not verify(SECRET, bob.headers, bob.body)
    assert bob.path == "/hooks/bob"
    assert _for(deliveries, done)[0].path == "/hooks/irisq?tenant=7"
    assert json.loads(_for(deliveries, done)[0].body)["data"]["result"]["model_version"] == "1"


def test_two_500s_then_200_is_one_accepted_delivery_after_3_attempts(place: Place) -> None:
    store = place.store
    with receiving(free_port(), [500, 500, 200]) as receiver:
        job_id = new_job(store, f"{receiver.url}/flaky")
        store.succeed(job_id, prediction_result())
        state = ended(store, job_id, "delivered")
        deliveries = receiver.deliveries

    assert [d.answered for d in deliveries] == [500, 500, 200]
    assert (state.attempts, state.last_status) == (3, 200)
    assert state.delivered_at is not None
    assert store.redis.zscore(CALLBACKS_DUE, job_id) is None  # nothing left to send
    # One delivery, retried: the same id and body every time, each signature fresh and valid.
    assert {d.headers["webhook-id"] for d in deliveries} == {message_id(job_id)}
    assert {d.body for d in deliveries} == {deliveries[0].body}
    assert all(verify(SECRET, d.headers, d.body) for d in deliveries)


def test_another_4xx_fails_the_delivery_at_once(place: Place) -> None:
    store = place.store
    with receiving(free_port(), [410]) as receiver:
        job_id = new_job(store, f"{receiver.url}/gone")
        store.fail(job_id, "model_not_found", "no such version")
        state = ended(store, job_id, "failed")
        deliveries = receiver.deliveries

    assert len(deliveries) == 1
    assert (state.attempts, state.last_status, state.last_error) == (1, 410, "answered 410")
    assert state.delivered_at is None
    assert store.redis.zscore(CALLBACKS_DUE, job_id) is None


def test_retries_show_on_the_record_while_the_receiver_is_down(place: Place) -> None:
    store = place.store
    job_id = new_job(store, f"http://127.0.0.1:{free_port()}/nobody-listens")
    store.succeed(job_id, prediction_result())

    state = wait_for(lambda: attempted(store, job_id, 2), 20, "two failed attempts recorded")
    assert state.state == "pending"
    assert state.last_status is None
    assert state.last_error is not None
    assert "could not connect" in state.last_error
    assert state.next_attempt_at is not None
    store.delete(job_id)  # a deleted job's delivery stops
    assert store.redis.zscore(CALLBACKS_DUE, job_id) is None


def test_a_delivery_survives_its_worker_killed_while_the_receiver_was_down(
    redis_url: str, tmp_path: Path
) -> None:
    here = place_in(redis_url, 4, tmp_path)
    store = here.store
    port = free_port()
    job_id = new_job(store, f"http://127.0.0.1:{port}/late")

    with here.worker("callbacks-first") as first:
        store.succeed(job_id, prediction_result())
        wait_for(lambda: attempted(store, job_id, 2), 20, "attempts failing, receiver down")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    with receiving(port) as receiver, here.worker("callbacks-second"):
        state = ended(store, job_id, "delivered")
        deliveries = receiver.deliveries

    assert len(deliveries) == 1
    assert verify(SECRET, deliveries[0].headers, deliveries[0].body)
    assert state.attempts >= 3
    assert store.redis.zscore(CALLBACKS_DUE, job_id) is None


def test_production_refuses_a_name_resolving_to_loopback_unless_allowed(
    redis_url: str, tmp_path: Path
) -> None:
    here = place_in(
        redis_url,
        5,
        tmp_path,
        IRISQ_ENV="production",
        IRISQ_WEBHOOK_ALLOWED_HOSTS='["127.0.0.1"]',
    )
    store = here.store
    with receiving(free_port()) as receiver, here.worker("callbacks-production"):
        refused = new_job(store, f"http://localhost:{receiver.port}/refused")
        allowed = new_job(store, f"{receiver.url}/allowed")
        store.succeed(refused, prediction_result())
        store.succeed(allowed, prediction_result())
        refusal = ended(store, refused, "failed")
        ended(store, allowed, "delivered")
        deliveries = receiver.deliveries

    assert [d.path for d in deliveries] == ["/allowed"]
    assert refusal.attempts == 1
    assert refusal.last_status is None
    assert refusal.last_error is not None
    assert "localhost resolves to a loopback address" in refusal.last_error


def test_the_callbacks_worker_loads_no_ml_library() -> None:
    # A process of its own that should start fast and small: only the delivery task.
    code = (
        "import sys\n"
        "from worker.callbacks_app import app\n"
        "app.loader.import_default_modules()\n"
        "heavy = ('mlflow', 'sklearn', 'pandas', 'numpy', 'worker.tasks')\n"
        "print([m for m in heavy if m in sys.modules], 'irisq.deliver_callback' in app.tasks)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout.split() == ["[]", "True"]
