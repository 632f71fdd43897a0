"""Callback tests' places: a Redis database of their own, jobs with callbacks, callbacks
workers on that database, and waiting for a delivery to end."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from devstack.processes import callbacks_worker, tail, wait_for
from irisq.job_types import CallbackState, JobKind
from irisq.jobs import JobStore
from irisq.tasks import CALLBACKS_QUEUE as QUEUE
from irisq.webhooks import new_secret
from irisq.workers import live_workers

BOB_SECRET = new_secret()  # the key `bob` has a webhook secret of its own
# Fast retries and a short lease: a killed worker's delivery is claimed again within seconds.
FAST = {
    "IRISQ_WEBHOOK_BACKOFF_SECONDS": "0.2",
    "IRISQ_WEBHOOK_TIMEOUT_SECONDS": "1",
    "IRISQ_WEBHOOK_LEASE_SECONDS": "2",
    "IRISQ_WEBHOOK_SECRETS": json.dumps({"bob": BOB_SECRET}),
}


@dataclass
class Place:
    """A Redis database of its own, and the environment of workers that use it."""

    url: str
    store: JobStore
    env: dict[str, str]
    logs: Path

    @contextmanager
    def worker(self, name: str) -> Iterator[subprocess.Popen[bytes]]:
        log = self.logs / f"{name}.log"
        with callbacks_worker(self.env, log, name=name) as process:
            client = self.store.redis
            try:
                wait_for(
                    lambda: any(w.startswith(f"{name}@") for w in live_workers(client, QUEUE)),
                    30,
                    f"the callbacks worker {name} up",
                )
            except TimeoutError as exc:
                raise RuntimeError(f"{exc}\n{tail(log)}") from None
            yield process


def place_in(redis_url: str, number: int, folder: Path, **env: str) -> Place:
    """Database `number` of the Redis at `redis_url`, emptied; workers get `env` (and FAST).

    In use: 3 (tests/worker/test_callbacks.py's worker), 4 and 5 (its tests' own workers), 6
    (tests/worker/test_callback_delivery.py, no worker)."""
    url = f"{redis_url.rsplit('/', 1)[0]}/{number}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    folder.mkdir(parents=True, exist_ok=True)
    batches = folder / "batches"
    full_env = {"IRISQ_REDIS_URL": url, "IRISQ_BATCH_DIR": str(batches), **FAST, **env}
    return Place(url, JobStore(client, ttl_seconds=600), full_env, folder)


def new_job(store: JobStore, url: str, owner: str | None = None) -> str:
    job_id = str(uuid.uuid4())
    store.create_many(JobKind.PREDICTION, {job_id: None}, {job_id: owner}, callbacks={job_id: url})
    return job_id


def prediction_result(rows: int = 1) -> str:
    row = {"species": "setosa", "probabilities": {"setosa": 1, "versicolor": 0, "virginica": 0}}
    return json.dumps(
        {
            "kind": "prediction",
            "model_version": "1",
            "model_source": "registry",
            "predictions": [row] * rows,
        }
    )


def callback_of(store: JobStore, job_id: str) -> CallbackState | None:
    job = store.get(job_id)
    return job.callback if job else None


def attempted(store: JobStore, job_id: str, attempts: int) -> CallbackState | None:
    callback = callback_of(store, job_id)
    return callback if callback and callback.attempts >= attempts else None


def ended(store: JobStore, job_id: str, state: str, within: float = 20) -> CallbackState:
    def check() -> CallbackState | None:
        callback = callback_of(store, job_id)
        return callback if callback and callback.state == state else None

    return wait_for(check, within, f"the callback of {job_id} {state}")
