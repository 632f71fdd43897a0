"""Cancel, expiry (410) and unknown ids (404), on a queue no worker consumes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from devstack.processes import wait_for
from irisq.jobs import QUEUED_INDEX
from irisq.quotas import OwnerKeys
from tests.support.stack import SETOSA, Stack


@pytest.fixture
def idle(stack: Stack, redis_url: str) -> Iterator[TestClient]:
    """The API on a Redis database no worker consumes: jobs stay queued until touched."""
    idle_url = redis_url.rsplit("/", 1)[0] + "/7"
    settings = stack.settings.model_copy(update={"redis_url": idle_url, "job_ttl_seconds": 2})
    with TestClient(create_app(settings)) as client:
        yield client
        client.app.state.resources.redis.flushdb()  # type: ignore[attr-defined]


def test_a_queued_job_is_canceled_once(idle: TestClient) -> None:
    job_id = idle.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]

    canceled = idle.post(f"/v1/jobs/{job_id}/cancel")
    again = idle.post(f"/v1/jobs/{job_id}/cancel")

    assert canceled.status_code == 200
    body = canceled.json()
    assert (body["status"], body["error"]["type"]) == ("canceled", "canceled")
    assert body["finished_at"] is not None
    assert again.status_code == 409
    assert "already ended: it is canceled" in again.json()["detail"]


def test_an_expired_job_is_410_and_a_made_up_one_404(idle: TestClient) -> None:
    job_id = idle.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]
    wait_for(lambda: idle.get(f"/v1/jobs/{job_id}").status_code == 410, 10, "the job expired")

    expired = idle.get(f"/v1/jobs/{job_id}")
    unknown = idle.get("/v1/jobs/00000000-0000-4000-8000-000000000000")

    assert "is gone (deleted, expired or removed)" in expired.json()["detail"]
    assert expired.json()["title"] == "Gone"
    assert unknown.status_code == 404
    assert idle.post(f"/v1/jobs/{job_id}/cancel").status_code == 410
    assert idle.delete(f"/v1/jobs/{job_id}").status_code == 410


def test_delete_removes_a_queued_job_and_what_it_held(idle: TestClient) -> None:
    job_id = idle.post("/v1/predictions", json={"rows": [SETOSA] * 3}).json()["job_id"]
    usage = OwnerKeys("anonymous").usage
    redis = idle.app.state.resources.redis  # type: ignore[attr-defined]
    assert int(redis.hget(usage, "rows")) == 3

    deleted = idle.delete(f"/v1/jobs/{job_id}")

    assert (deleted.status_code, deleted.content) == (204, b"")
    gone = idle.get(f"/v1/jobs/{job_id}")
    assert gone.status_code == 410  # its owner learns it is gone, not that it never was
    assert int(redis.hget(usage, "rows")) == 0  # the rows in flight are released at once
    assert redis.zscore(QUEUED_INDEX, job_id) is None
    assert idle.delete(f"/v1/jobs/{job_id}").status_code == 410


def test_ping_and_health_say_nothing_can_be_scored_without_a_worker(idle: TestClient) -> None:
    """No predict worker consumes this database: MLflow's probes must not say 200."""
    for probe in ("/ping", "/health"):
        answer = idle.get(probe)
        assert answer.status_code == 503, answer.text
        assert "workers" in answer.json()["detail"]
        assert answer.headers["Retry-After"]
    assert idle.get("/healthz").status_code == 200  # the process itself is alive
