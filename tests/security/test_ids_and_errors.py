"""Ids read back from the queue are not trusted, and errors tell clients nothing internal."""

from __future__ import annotations

import logging
import uuid

import pytest
from celery import Celery
from fastapi.testclient import TestClient

from api.main import create_app
from devstack.processes import wait_for
from irisq.job_types import JobKind
from irisq.jobs import JobStore
from irisq.tasks import BATCH_TASK, PREDICT_GROUP_TASK, PREDICT_TASK
from tests.support.stack import SETOSA, Stack


def _worker_log(stack: Stack) -> str:
    return (stack.logs / "predict.log").read_text(errors="replace")


def test_a_forged_job_id_never_becomes_a_path(stack: Stack) -> None:
    victim = stack.settings.batch_dir.parent / "victim"
    victim.mkdir(parents=True, exist_ok=True)
    (victim / "precious.txt").write_text("keep me")
    sender = Celery("attacker", broker=stack.settings.redis_url)
    sender.send_task(
        BATCH_TASK, args=["../victim", "reject", 1], task_id="../victim", queue="predict"
    )
    sender.send_task(
        PREDICT_GROUP_TASK,
        args=[[["../../etc", [[5.1, 3.5, 1.4, 0.2]], "champion"]]],
        queue="predict",
    )
    sender.close()

    wait_for(
        lambda: _worker_log(stack).count("job id is not a UUID") >= 2,
        30,
        "the worker's refusal of both tasks",
    )
    assert (victim / "precious.txt").read_text() == "keep me"
    assert stack.predict([SETOSA])["status"] == "succeeded"  # and it goes on


def test_an_unexpected_worker_error_is_logged_not_shown(stack: Stack) -> None:
    store = JobStore(stack.api.app.state.resources.redis, stack.settings.job_ttl_seconds)  # type: ignore[attr-defined]
    job_id = str(uuid.uuid4())
    store.create(JobKind.PREDICTION, job_id)
    sender = Celery("client", broker=stack.settings.redis_url)
    sender.send_task(
        PREDICT_TASK,
        args=[job_id, [["five", "three", "one", "zero"]], "champion"],
        task_id=job_id,
        queue="predict",
    )
    sender.close()

    job = stack.wait(job_id)

    assert job["status"] == "failed"
    assert job["error"]["type"] == "internal_error"
    message = job["error"]["message"]
    assert "could not convert" not in message  # the exception's own text stays in the log
    error_id = message.rsplit(" ", 1)[1]
    wait_for(lambda: f"error {error_id}" in _worker_log(stack), 10, "the error in the log")
    assert "could not convert string to float" in _worker_log(stack)


def test_an_unexpected_api_error_is_a_generic_500(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(stack.settings)

    def broken() -> None:
        raise RuntimeError("cannot reach db.internal:5432 with password hunter2")

    app.add_api_route("/v1/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.ERROR):
        response = client.get("/v1/broken")

    assert response.status_code == 500
    problem = response.json()
    assert "hunter2" not in response.text
    assert "db.internal" not in response.text
    assert problem["detail"].endswith(f"logged as error {problem['error_id']}")
    assert problem["error_id"] in caplog.text
    assert "hunter2" in caplog.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/predictions",
            '{"rows": [{"sepal_length": 1' + "0" * 4300 + ', "sepal_width": 3.5, '
            '"petal_length": 1.4, "petal_width": 0.2}]}',
        ),
        ("/invocations", '{"instances": [[1' + "0" * 4300 + ", 3.5, 1.4, 0.2]]}"),
    ],
)
def test_a_4300_digit_number_is_a_422(stack: Stack, path: str, body: str) -> None:
    response = stack.api.post(path, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
