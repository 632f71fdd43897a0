"""The reconciler on the real stack: lost tasks are sent again, expired batch files go."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio as aioredis
from celery import Celery

from api.batching import Pending
from api.submission import send_group
from irisq import celery_messages
from irisq.job_types import JobKind
from irisq.jobs import QUEUED_INDEX, JobStore
from irisq.queueing import make_celery, task_message
from irisq.settings import Settings
from irisq.tasks import PREDICT_QUEUE, PREDICT_TASK
from tests.support.stack import Stack
from worker.reconciler import ORPHAN_FILES_AFTER_SECONDS, Reconciler


def _reconciler(stack: Stack) -> tuple[Reconciler, JobStore]:
    settings = stack.settings.model_copy(update={"reconcile_after_seconds": 5})
    store = JobStore(stack.api.app.state.resources.redis, settings.job_ttl_seconds)  # type: ignore[attr-defined]
    return Reconciler(settings, make_celery(settings), store), store


def test_a_job_whose_task_never_reached_the_queue_is_sent_and_served(stack: Stack) -> None:
    reconciler, store = _reconciler(stack)
    lost_id, fresh_id = str(uuid.uuid4()), str(uuid.uuid4())
    lost = store.create(
        JobKind.PREDICTION,
        lost_id,
        task=task_message(PREDICT_TASK, lost_id, [[[5.1, 3.5, 1.4, 0.2]], "champion"]),
    )
    fresh = store.create(
        JobKind.PREDICTION, fresh_id, task=task_message(PREDICT_TASK, fresh_id, [])
    )
    store.redis.zadd(QUEUED_INDEX, {lost.job_id: time.time() - 60})  # queued a minute ago

    resent = reconciler.run_once()

    assert resent == [lost.job_id]  # the fresh one is still within its threshold
    job = stack.wait(lost.job_id)
    assert (job["status"], job["result"]["predictions"][0]["species"]) == ("succeeded", "setosa")
    assert reconciler.run_once() == []  # ended: nothing more to do
    store.cancel(fresh.job_id, by="test")


def test_files_of_expired_batches_are_removed_and_others_kept(stack: Stack) -> None:
    reconciler, store = _reconciler(stack)
    batch_dir = stack.settings.batch_dir
    old = time.time() - ORPHAN_FILES_AFTER_SECONDS - 60
    expired = batch_dir / str(uuid.uuid4())
    uploading = batch_dir / str(uuid.uuid4())
    live = batch_dir / store.create(JobKind.BATCH, str(uuid.uuid4())).job_id
    for folder in (expired, uploading, live):
        folder.mkdir(parents=True)
        (folder / "input.csv").write_text("sepal_length\n")
    os.utime(expired, (old, old))
    os.utime(live, (old, old))

    removed = reconciler.sweep_batch_files(time.time())

    assert removed == [expired.name]
    assert uploading.exists()
    assert live.exists()


async def _send_alone(app: Celery, store: JobStore, settings: Settings) -> str:
    """A lone prediction as the API sends it (a group of one); its job id."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        pending = Pending(str(uuid.uuid4()), [[5.1, 3.5, 1.4, 0.2]], "champion", "someone")
        await send_group(app, store, client, settings, [pending])
    finally:
        await client.aclose()
    return pending.job_id


def test_a_job_whose_group_task_waits_in_the_queue_is_not_sent_again(
    redis_url: str, tmp_path: Path
) -> None:
    db = redis_url.rsplit("/", 1)[0] + "/9"  # a database no worker consumes
    settings = Settings(redis_url=db, batch_dir=tmp_path, reconcile_after_seconds=5)
    app, client = make_celery(settings), redis.Redis.from_url(db)
    store = JobStore(client, settings.job_ttl_seconds)
    try:
        waiting = asyncio.run(_send_alone(app, store, settings))
        lost = asyncio.run(_send_alone(app, store, settings))
        client.lpop(PREDICT_QUEUE)  # the newest task, the second job's: lost
        a_minute_ago = time.time() - 60
        client.zadd(QUEUED_INDEX, {waiting: a_minute_ago, lost: a_minute_ago})

        resent = Reconciler(settings, app, store).run_once()

        assert resent == [lost]
        queued = [celery_messages.job_ids(raw) for raw in client.lrange(PREDICT_QUEUE, 0, -1)]
        assert sorted(queued) == sorted([[waiting], [lost]])
    finally:
        client.flushdb()
        client.close()
        app.close()


def test_objects_of_expired_batches_are_removed_from_s3_and_others_kept(s3_stack: Stack) -> None:
    reconciler, store = _reconciler(s3_stack)
    storage = s3_stack.api.app.state.resources.storage  # type: ignore[attr-defined]
    expired = str(uuid.uuid4())
    live = store.create(JobKind.BATCH, str(uuid.uuid4())).job_id
    for job_id in (expired, live):
        storage.write_bytes(job_id, "input.csv", b"sepal_length\n")
    # S3 keeps its own write times: the sweep is asked about a moment past the grace period.
    just_written = reconciler.sweep_batch_files(time.time())
    later = reconciler.sweep_batch_files(time.time() + ORPHAN_FILES_AFTER_SECONDS + 60)

    assert expired not in just_written  # an upload in progress has no record yet
    assert expired in later
    assert storage.size(expired) == 0
    assert live not in later
    assert storage.size(live) > 0
