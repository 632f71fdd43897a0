"""Waiting for results (`?wait=`, `Prefer: wait=`) and micro-batching, on the real stack."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from api.batching import MicroBatcher, Pending
from api.main import create_app
from irisq.jobs import Job, JobKind, JobStatus
from tests.support.stack import SETOSA, VIRGINICA, Stack


def test_wait_answers_200_with_the_finished_job(stack: Stack) -> None:
    response = stack.api.post("/v1/predictions", params={"wait": 10}, json={"rows": [VIRGINICA]})

    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "succeeded"
    assert job["result"]["predictions"][0]["species"] == "virginica"
    assert response.headers["Location"] == f"/v1/jobs/{job['job_id']}"


def test_prefer_wait_is_honoured_and_said_so(stack: Stack) -> None:
    response = stack.api.post(
        "/v1/predictions", headers={"Prefer": "respond-async, wait=10"}, json={"rows": [SETOSA]}
    )

    assert response.status_code == 200, response.text
    assert response.headers["Preference-Applied"] == "wait=10"
    assert response.json()["result"]["predictions"][0]["species"] == "setosa"


@pytest.fixture
def idle(stack: Stack, redis_url: str) -> Iterator[TestClient]:
    """The API on a Redis database no worker consumes."""
    settings = stack.settings.model_copy(update={"redis_url": redis_url.rsplit("/", 1)[0] + "/8"})
    with TestClient(create_app(settings)) as client:
        yield client
        client.app.state.redis.flushdb()  # type: ignore[attr-defined]


def test_a_wait_that_runs_out_is_the_usual_202(idle: TestClient) -> None:
    started = time.monotonic()
    response = idle.post("/v1/predictions", params={"wait": 0.5}, json={"rows": [SETOSA]})
    waited = time.monotonic() - started

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert waited >= 0.5  # it did wait, then gave up


def test_a_wait_over_a_minute_is_refused(stack: Stack) -> None:
    response = stack.api.post("/v1/predictions", params={"wait": 61}, json={"rows": [SETOSA]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "wait"


def _flower(i: int) -> dict[str, float]:
    """Distinct rows across the three species, so a mix-up would show."""
    base = (SETOSA, VIRGINICA)[i % 2]
    return {**base, "sepal_length": round(base["sepal_length"] + (i % 7) / 10, 1)}


def test_concurrent_predictions_share_tasks_and_each_gets_its_own_rows(stack: Stack) -> None:
    count = 120
    flowers = [_flower(i) for i in range(count)]
    expected = stack.predict(flowers)["result"]["predictions"]  # one job, rows in order
    before = _groups(stack)

    def one(i: int) -> dict[str, object]:
        response = stack.api.post(
            "/v1/predictions", params={"wait": 20}, json={"rows": [flowers[i]]}
        )
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    with ThreadPoolExecutor(max_workers=16) as pool:
        jobs = list(pool.map(one, range(count)))

    assert [job["result"]["predictions"] for job in jobs] == [[p] for p in expected]  # type: ignore[index]
    assert len({job["job_id"] for job in jobs}) == count
    groups, grouped_jobs = (a - b for a, b in zip(_groups(stack), before, strict=True))
    print(f"\n{count} concurrent predictions went out in {groups} tasks")
    assert grouped_jobs == count
    assert groups < count  # some tasks carried several jobs


def _groups(stack: Stack) -> tuple[float, float]:
    """(tasks sent, jobs in them) from /metrics."""
    text = stack.api.get("/metrics").text
    values = {}
    for line in text.splitlines():
        if line.startswith(("irisq_micro_batch_jobs_count", "irisq_micro_batch_jobs_sum")):
            name, value = line.split()
            values[name] = float(value)
    return values["irisq_micro_batch_jobs_count"], values["irisq_micro_batch_jobs_sum"]


def _job(job_id: str) -> Job:
    return Job.model_validate(
        {
            "job_id": job_id,
            "kind": JobKind.PREDICTION,
            "status": JobStatus.QUEUED,
            "progress": 0,
            "created_at": "2026-01-01T00:00:00Z",
        }
    )


def test_a_lone_request_is_sent_at_once_and_company_is_grouped() -> None:
    """The batcher alone, with a recording sender: no timer is ever waited for here."""
    sent: list[list[str]] = []

    def send_group(group: list[Pending]) -> dict[str, Job]:
        time.sleep(0.05)  # a slow round trip, so that others arrive meanwhile
        sent.append([p.job_id for p in group])
        return {p.job_id: _job(p.job_id) for p in group}

    async def scenario() -> float:
        batcher = MicroBatcher(send_group, max_rows=4, max_delay_seconds=30)
        started = time.monotonic()
        await batcher.submit(Pending("lone", [[1.0, 1.0, 1.0, 1.0]], "champion", "a"))
        lone = time.monotonic() - started
        first = asyncio.ensure_future(
            batcher.submit(Pending("first", [[1.0, 1.0, 1.0, 1.0]], "champion", "a"))
        )
        await asyncio.sleep(0)  # the first group is on its way
        rest = [
            batcher.submit(Pending(f"r{i}", [[1.0, 1.0, 1.0, 1.0]], "champion", "a"))
            for i in range(6)
        ]
        await asyncio.gather(first, *rest)
        return lone

    lone = asyncio.run(scenario())

    assert lone < 5  # far below the 30 s delay: nothing waited for company
    # r0..r5 arrived while "first" was in flight: 4 rows went as soon as it landed (the
    # row cap), then the last 2 when that group had been sent.
    assert sent == [["lone"], ["first"], ["r0", "r1", "r2", "r3"], ["r4", "r5"]]
