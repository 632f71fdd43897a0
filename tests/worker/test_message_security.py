"""A pickled message on the queue is refused, never unpickled (which would run its code)."""

from __future__ import annotations

import pathlib
from pathlib import Path
from typing import Any

from celery import Celery

from devstack.processes import wait_for
from irisq.tasks import PREDICT_TASK
from tests.support.stack import SETOSA, Stack


class Trap:
    """Unpickling this touches `marker`: proof that a worker ran code from a message."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.marker,))


def test_a_pickled_task_is_refused_and_the_worker_goes_on(stack: Stack, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    sender = Celery("attacker", broker=stack.settings.redis_url)
    sender.conf.update(task_serializer="pickle", accept_content=["pickle"])
    sender.send_task(
        PREDICT_TASK,
        args=["pickled-job", [[5.1, 3.5, 1.4, 0.2]], Trap(marker)],
        task_id="pickled-job",
        queue="predict",
    )
    sender.close()

    # A JSON job sent after it is served: the worker read past the pickle and carried on.
    assert stack.predict([SETOSA])["status"] == "succeeded"
    log = stack.logs / "predict.log"
    wait_for(
        lambda: "Refusing to deserialize" in log.read_text(errors="replace"),
        10,
        "the worker's refusal in its log",
    )
    assert not marker.exists()
    assert stack.api.app.state.resources.redis.llen("predict") == 0  # type: ignore[attr-defined]
