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
from devstack.processes import wait_for
from irisq.job_types import Job, JobKind, JobStatus
from tests.support.stack import SETOSA, VIRGINICA, Stack, metric_samples


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
        client.app.state.resources.redis.flushdb()  # type: ignore[attr-defined]


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
    before, counted_before = _groups(stack), _counted(stack)

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
    # The job metrics count every grouped job and row once (written once per group, just
    # after its results: the last group's may land a moment after its answers).
    wait_for(lambda: _counted(stack)["jobs"] - counted_before["jobs"] >= count, 10, "metrics")
    counted = _counted(stack)
    assert counted["jobs"] - counted_before["jobs"] == count
    for species in ("setosa", "virginica"):
        rows = sum(1 for p in expected if p["species"] == species)
        assert counted[species] - counted_before[species] == rows


def _counted(stack: Stack) -> dict[str, float]:
    """Finished prediction jobs, and rows predicted per species (all versions), from /metrics."""
    counted = {"jobs": 0.0, "setosa": 0.0, "versicolor": 0.0, "virginica": 0.0}
    for (name, labels), value in metric_samples(stack.api.get("/metrics").text).items():
        label = dict(labels)
        if name == "irisq_job_duration_seconds_count" and label == {
            "kind": "prediction",
            "status": "succeeded",
        }:
            counted["jobs"] += value
        elif name == "irisq_predictions_total":
            counted[label["species"]] += value
    return counted


def _groups(stack: Stack) -> tuple[float, float]:
    """(tasks sent, jobs in them) from /metrics."""
    samples = metric_samples(stack.api.get("/metrics").text)
    return (
        samples[("irisq_micro_batch_jobs_count", frozenset())],
        samples[("irisq_micro_batch_jobs_sum", frozenset())],
    )


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


ROW = [1.0, 1.0, 1.0, 1.0]


class RecordingSender:
    """Stands in for the queue in the batcher-only tests: records each group it is given."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.groups: list[list[str]] = []

    async def __call__(self, group: list[Pending]) -> dict[str, Job]:
        await asyncio.sleep(self.seconds)  # a round trip, so that others arrive meanwhile
        self.groups.append([p.job_id for p in group])
        return {p.job_id: _job(p.job_id) for p in group}


async def _settle() -> None:
    for _ in range(5):  # let the loop run the sends it scheduled
        await asyncio.sleep(0)


def test_a_lone_request_goes_at_once_and_company_waits_for_a_free_slot() -> None:
    """The batcher alone: no timer fires here (they are 30 s); groups end when told."""
    sender = RecordingSender()

    async def scenario() -> tuple[float, list[list[list[str]]]]:
        batcher = MicroBatcher(sender, max_rows=4, max_delay_seconds=30, slots=1)
        seen = []
        started = time.monotonic()
        await batcher.submit(Pending("lone", [ROW], "champion", "a"))
        lone = time.monotonic() - started
        seen.append(list(sender.groups))
        # "lone" holds the only slot: whatever comes now gathers into the next group...
        waiting = [
            asyncio.ensure_future(batcher.submit(Pending(f"r{i}", [ROW], "champion", "a")))
            for i in range(3)
        ]
        await _settle()
        seen.append(list(sender.groups))
        batcher.job_ended("lone")  # ...which leaves as soon as the slot is free
        await asyncio.gather(*waiting)
        seen.append(list(sender.groups))
        return lone, seen

    lone, seen = asyncio.run(scenario())

    assert lone < 5  # far below the 30 s delay: the lone request waited for nothing
    assert seen == [
        [["lone"]],
        [["lone"]],
        [["lone"], ["r0", "r1", "r2"]],
    ]


def test_a_full_group_leaves_without_a_slot_and_the_rest_waits_for_one() -> None:
    sender = RecordingSender()

    async def scenario() -> list[list[str]]:
        batcher = MicroBatcher(sender, max_rows=4, max_delay_seconds=30, slots=1)
        await batcher.submit(Pending("first", [ROW], "champion", "a"))
        rest = [
            asyncio.ensure_future(batcher.submit(Pending(f"r{i}", [ROW], "champion", "a")))
            for i in range(6)
        ]
        await asyncio.gather(*rest[:4])  # four rows: the row cap sends them, slot or not
        batcher.job_ended("first")  # one slot, still held by r0..r3: r4, r5 keep waiting
        await _settle()
        assert sender.groups == [["first"], ["r0", "r1", "r2", "r3"]]
        batcher.job_ended("r2")  # any job of a group frees its slot: its group has ended
        await asyncio.gather(*rest)
        return sender.groups

    assert asyncio.run(scenario()) == [["first"], ["r0", "r1", "r2", "r3"], ["r4", "r5"]]


def _wait_behind_a_held_slot(
    sender: RecordingSender, max_delay_seconds: float, slot_timeout_seconds: float = 1.0
) -> float:
    """Seconds a request waits while the only slot is held by a group never announced."""

    async def scenario() -> float:
        batcher = MicroBatcher(
            sender,
            max_rows=100,
            max_delay_seconds=max_delay_seconds,
            slots=1,
            slot_timeout_seconds=slot_timeout_seconds,
        )
        await batcher.submit(Pending("held", [ROW], "champion", "a"))  # never announced
        started = time.monotonic()
        await batcher.submit(Pending("next", [ROW], "champion", "a"))
        return time.monotonic() - started

    return asyncio.run(scenario())


def test_a_group_whose_end_is_never_heard_frees_its_slot_after_the_timeout() -> None:
    sender = RecordingSender()
    waited = _wait_behind_a_held_slot(sender, max_delay_seconds=30, slot_timeout_seconds=0.2)
    assert 0.15 <= waited < 5
    assert sender.groups == [["held"], ["next"]]


def test_a_request_waits_for_a_slot_at_most_the_delay() -> None:
    sender = RecordingSender()
    waited = _wait_behind_a_held_slot(sender, max_delay_seconds=0.1)
    assert 0.08 <= waited < 5
    assert sender.groups == [["held"], ["next"]]


def test_without_announcements_a_slot_is_free_once_its_group_is_sent() -> None:
    sender = RecordingSender(seconds=0.05)

    async def scenario() -> list[list[str]]:
        batcher = MicroBatcher(
            sender, max_rows=100, max_delay_seconds=30, slots=1, ends_announced=lambda: False
        )
        first = asyncio.ensure_future(batcher.submit(Pending("first", [ROW], "champion", "a")))
        await _settle()  # "first" is being sent: the others gather meanwhile
        rest = [batcher.submit(Pending(f"r{i}", [ROW], "champion", "a")) for i in range(3)]
        await asyncio.gather(first, *rest)
        return sender.groups

    assert asyncio.run(scenario()) == [["first"], ["r0", "r1", "r2"]]
