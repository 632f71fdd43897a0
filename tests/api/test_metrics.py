"""Prometheus /metrics on the real stack, and the job id on the workers' log lines."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from api.main import create_app
from devstack.processes import free_port, wait_for
from irisq.settings import Settings
from tests.support.stack import SETOSA, Stack, metric_samples


def test_metrics_count_requests_jobs_queues_and_predictions(stack: Stack) -> None:
    job = stack.predict([SETOSA, SETOSA])
    version = job["result"]["model_version"]

    response = stack.api.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)
    assert samples[("irisq_redis_up", frozenset())] == 1
    assert samples[("irisq_workers", frozenset({("queue", "predict")}))] >= 1
    assert ("irisq_queue_depth", frozenset({("queue", "train")})) in samples
    finished = (
        "irisq_job_duration_seconds_count",
        frozenset({("kind", "prediction"), ("status", "succeeded")}),
    )
    assert samples[finished] >= 1
    predicted = (
        "irisq_predictions_total",
        frozenset({("model_version", version), ("species", "setosa")}),
    )
    assert samples[predicted] >= 2
    posted = (
        "irisq_http_request_duration_seconds_count",
        frozenset({("method", "POST"), ("route", "/v1/predictions"), ("status", "202")}),
    )
    assert samples[posted] >= 1


def test_metrics_still_answer_when_redis_is_down() -> None:
    with TestClient(create_app(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))) as api:
        response = api.get("/metrics")

    assert response.status_code == 200
    assert metric_samples(response.text)[("irisq_redis_up", frozenset())] == 0


def test_worker_log_lines_about_a_job_name_it(stack: Stack) -> None:
    job = stack.predict([SETOSA])
    log = stack.logs / "predict.log"

    def lines() -> list[str]:
        return [line for line in log.read_text().splitlines() if job["job_id"] in line]

    found = wait_for(lines, 10, "job lines logged")
    assert any(
        re.search(rf"job succeeded in [\d.]+ ms \[job {job['job_id']}\]", line) for line in found
    )
