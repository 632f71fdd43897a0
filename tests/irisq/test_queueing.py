"""Task messages the API pushes itself must be the ones Celery would have sent."""

from __future__ import annotations

import base64
import json

import redis

from irisq.queueing import encode_task, make_celery
from irisq.settings import Settings
from irisq.tasks import PREDICT_GROUP_TASK, TASK_QUEUES


def test_an_encoded_task_is_what_send_task_pushes(redis_url: str) -> None:
    db = redis_url.rsplit("/", 1)[0] + "/9"  # a database no worker consumes
    app = make_celery(Settings(redis_url=db), main="irisq-api")
    client = redis.Redis.from_url(db)
    queue = TASK_QUEUES[PREDICT_GROUP_TASK]
    args = [[["job-1", [[5.1, 3.5, 1.4, 0.2]], "champion"]]]
    try:
        app.send_task(PREDICT_GROUP_TASK, args=args, task_id="group-1")
        [sent] = client.lrange(queue, 0, -1)
        real = json.loads(sent)
        ours = json.loads(encode_task(app, PREDICT_GROUP_TASK, "group-1", args, "[1 prediction]"))
    finally:
        client.flushdb()
        client.close()

    assert base64.b64decode(ours["body"]) == base64.b64decode(real["body"])
    # Only the summary of the arguments (for logs and monitors) and the delivery tag,
    # which must be fresh for each message, differ.
    assert ours["headers"] == {**real["headers"], "argsrepr": "[1 prediction]"}
    assert ours["properties"]["delivery_tag"] != real["properties"]["delivery_tag"]
    del ours["properties"]["delivery_tag"], real["properties"]["delivery_tag"]
    assert ours == {**real, "headers": ours["headers"]}
