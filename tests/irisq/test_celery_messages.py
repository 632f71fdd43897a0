"""Celery's messages in Redis are what irisq.celery_messages says they are (pins the format)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from irisq import celery_messages
from irisq.queueing import make_celery, task_message, task_message_text
from irisq.settings import Settings
from irisq.tasks import BATCH_PART_TASK, PREDICT_GROUP_TASK, PREDICT_TASK, TASK_QUEUES

QUEUE = TASK_QUEUES[PREDICT_GROUP_TASK]
ROWS = [[5.1, 3.5, 1.4, 0.2]]


@pytest.fixture
def idle(redis_url: str) -> Iterator[tuple[Celery, redis.Redis]]:
    """A Celery app and a client on a Redis database no worker consumes."""
    db = redis_url.rsplit("/", 1)[0] + "/9"
    app = make_celery(Settings(redis_url=db), main="irisq-api")
    client = redis.Redis.from_url(db)
    yield app, client
    client.flushdb()
    client.close()
    app.close()


def test_an_encoded_task_is_what_send_task_pushes(idle: tuple[Celery, redis.Redis]) -> None:
    app, client = idle
    args = [[["job-1", ROWS, "champion"]]]
    app.send_task(PREDICT_GROUP_TASK, args=args, task_id="group-1")
    [sent] = client.lrange(QUEUE, 0, -1)
    real = json.loads(sent)
    ours = json.loads(
        celery_messages.encode(app, PREDICT_GROUP_TASK, "group-1", args, "[1 prediction]")
    )

    assert base64.b64decode(ours["body"]) == base64.b64decode(real["body"])
    # Only the summary of the arguments (for logs and monitors) and the delivery tag,
    # which must be fresh for each message, differ.
    assert ours["headers"] == {**real["headers"], "argsrepr": "[1 prediction]"}
    assert ours["properties"]["delivery_tag"] != real["properties"]["delivery_tag"]
    del ours["properties"]["delivery_tag"], real["properties"]["delivery_tag"]
    assert ours == {**real, "headers": ours["headers"]}


def test_the_jobs_of_queued_and_unacknowledged_messages_are_read(
    idle: tuple[Celery, redis.Redis],
) -> None:
    app, client = idle
    group = [["job-1", ROWS, "champion"], ["job-2", ROWS, "3"]]
    app.send_task(PREDICT_GROUP_TASK, args=[group], task_id="group-1")
    app.send_task(PREDICT_TASK, args=["job-3", ROWS, "champion"], task_id="job-3")
    client.lpush(QUEUE, celery_messages.encode(app, PREDICT_GROUP_TASK, "job-4", [[]], "[]"))
    client.lpush(QUEUE, b"not a message")
    app.send_task(BATCH_PART_TASK, args=["job-5", 3], task_id="job-5-part-3")

    queued = [celery_messages.job_ids(raw) for raw in client.lrange(QUEUE, 0, -1)]
    # the newest first; a batch's part holds its batch
    assert queued == [["job-5"], [], [], ["job-3"], ["job-1", "job-2"]]

    # A consumer that has not acknowledged (as a worker with acks_late holds a running task):
    # kombu keeps the message in its `unacked` hash until the ack.
    with app.connection_for_read() as connection, connection.SimpleQueue(QUEUE) as queue:
        first = queue.get(timeout=5)  # the oldest: the group
        [held] = client.hvals(celery_messages.UNACKED)
        assert celery_messages.job_ids(held) == ["job-1", "job-2"]
        first.ack()
        assert client.hvals(celery_messages.UNACKED) == []


def test_a_task_copy_from_encoded_arguments_reads_as_the_task_message() -> None:
    """The API encodes a prediction's rows once and wraps the text (api.submission): what
    the reconciler reads back is the task it would have recorded from the arguments."""
    job_id, rows, model = "01a23d68-2583-891e-850d-d07d863a3ac3", [[5.1, 3.5, 1.4, 0.2]], "champion"
    text = task_message_text(PREDICT_TASK, ", ".join(map(json.dumps, (job_id, rows, model))))

    assert json.loads(text) == task_message(PREDICT_TASK, job_id, [rows, model])
