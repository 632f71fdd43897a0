"""Celery's task messages as they lie in Redis: the one module that knows their format.

Two places read or write these messages without kombu: the API pushes its prediction tasks
itself, in the same script as their job records (irisq.lua's create: one round trip,
from the event loop, no kombu producer), and the reconciler reads which jobs the queues and
the workers still hold.
What they rely on, as the locked Celery 5.7 (task protocol 2) and kombu 5.7 (its Redis
transport) write it:

- a queue is a Redis list named after it; each entry is kombu's JSON envelope
  `{"body", "content-encoding", "content-type", "headers", "properties"}`, the body base64
  of Celery's JSON `[args, kwargs, embed]`, the properties carrying `delivery_info`, a
  fresh `delivery_tag` and `"body_encoding": "base64"`. Priority 0 only: kombu keeps other
  priorities in lists of other names, and irisq sends none.
- Celery's headers name the task (`task`) and its id (`id`): irisq sends each task under its
  job's id, but a prediction group (several jobs) carries its jobs' ids in its args,
  `[[[job id, rows, model], ...]]`, and a batch's part its batch's, `[job id, index]`.
- a delivered, unacknowledged message (`task_acks_late`) sits in kombu's `unacked` hash,
  by delivery tag, as the JSON `[envelope, exchange, routing key]`.

tests/irisq/test_celery_messages.py pins all of it against messages that `send_task` pushed
and a kombu consumer holds: an upgrade that changes the format fails there first.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from celery import Celery

from irisq.tasks import BATCH_PART_TASK, PREDICT_GROUP_TASK, TASK_QUEUES

UNACKED = "unacked"  # kombu's hash of delivered, unacknowledged messages (its `unacked_key`)


def encode(
    app: Celery,
    name: str,
    task_id: str,
    args: list[Any] | str,
    argsrepr: str,
) -> str:
    """The queue entry `app.send_task(name, args, task_id=task_id)` would push onto the task's
    queue; `argsrepr` is the arguments' summary in logs and monitors (Celery's own repr of a
    large group costs ~0.1 ms). `args` may come as its JSON text already (a large group's
    rows, encoded once for the group and the records' copies)."""
    queue = TASK_QUEUES[name]
    message = app.amqp.as_task_v2(
        task_id,
        name,
        args=[] if isinstance(args, str) else args,
        argsrepr=argsrepr,
        kwargsrepr="{}",
        reply_to=app.thread_oid,
        ignore_result=None,
    )
    if isinstance(args, str):
        _, kwargs, embed = message.body
        text = f"[{args}, {json.dumps(kwargs)}, {json.dumps(embed)}]"
    else:
        text = json.dumps(message.body)
    body = base64.b64encode(text.encode()).decode()
    properties = {
        **message.properties,
        "delivery_mode": 2,  # persistent
        "delivery_info": {"exchange": "", "routing_key": queue},
        "priority": 0,
        "body_encoding": "base64",
        "delivery_tag": str(uuid.uuid4()),
    }
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": message.headers,
            "properties": properties,
        }
    )


def job_ids(raw: bytes | str) -> list[str]:
    """The ids of the jobs a queue entry or an `unacked` hash value carries: every member's
    of a prediction group, the batch's of a batch part, the task id of any other task; none if
    it is not a task message."""
    try:
        message = json.loads(raw)
    except ValueError:
        return []
    if isinstance(message, list) and message:  # unacked: [envelope, exchange, routing key]
        message = message[0]
    headers = message.get("headers") if isinstance(message, dict) else None
    if not isinstance(headers, dict):
        return []
    task = headers.get("task")
    if task not in (PREDICT_GROUP_TASK, BATCH_PART_TASK):
        return [str(headers["id"])] if headers.get("id") else []
    try:
        args = json.loads(base64.b64decode(message["body"]))[0]
        if task == BATCH_PART_TASK:  # [job id, part index]: the batch is still held
            return [str(args[0])]
        return [str(member[0]) for member in args[0]]
    except (KeyError, IndexError, TypeError, ValueError):  # not JSON (a refused pickle)
        return []
