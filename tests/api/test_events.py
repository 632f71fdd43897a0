"""`GET /v1/jobs/{id}/events`: Server-Sent Events from a real uvicorn process, as browsers
and `curl -N` read them."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from devstack.processes import api_process, wait_for
from irisq.jobs import JobStore
from irisq.ranges import OBSERVED_RANGES
from irisq.schema import FEATURES
from tests.support.stack import SETOSA, Stack

HEARTBEAT_SECONDS = 0.5


@dataclass
class Event:
    name: str
    data: str
    id: str | None = None


@dataclass
class Reading:
    """What a client read from one stream."""

    events: list[Event] = field(default_factory=list)
    comments: int = 0
    ended: bool = False  # the server closed the stream


def read_events(
    client: httpx.Client,
    url: str,
    headers: dict[str, str] | None = None,
    stop_after: int = 0,
    reading: Reading | None = None,
) -> Reading:
    """Read the stream until it ends (or until `stop_after` progress events: then drop it),
    into `reading` as it goes."""
    reading = reading if reading is not None else Reading()
    current = Event("message", "")
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith(":"):
                reading.comments += 1
            elif line.startswith("event: "):
                current.name = line[7:]
            elif line.startswith("data: "):
                current.data = line[6:]
            elif line.startswith("id: "):
                current.id = line[4:]
            elif line == "" and current.data:
                reading.events.append(current)
                current = Event("message", "")
                progress = [e for e in reading.events if e.name == "progress" and e.id]
                if stop_after and len(progress) >= stop_after:
                    return reading  # drop the connection mid-job
        reading.ended = True
    return reading


@pytest.fixture(scope="module")
def events_api(stack: Stack) -> Iterator[str]:
    env = {**stack.env, "IRISQ_EVENTS_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
    with api_process(env, stack.logs / "api-events.log") as (url, _):
        yield url


@pytest.fixture
def client(events_api: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=events_api, timeout=httpx.Timeout(10, read=60)) as http:
        yield http


def million_rows(path: Path) -> bytes:
    generator = np.random.default_rng(7)
    block = np.column_stack([generator.uniform(*OBSERVED_RANGES[f], 1_000_000) for f in FEATURES])
    text = io.StringIO()
    text.write(",".join(FEATURES) + "\n")
    np.savetxt(text, block, fmt="%.2f", delimiter=",")
    return text.getvalue().encode()


def test_a_million_row_batch_streams_progress_and_one_final_event_resumed_without_loss(
    client: httpx.Client, redis_url: str, tmp_path: Path
) -> None:
    upload = client.post(
        "/v1/batches", files={"file": ("big.csv", million_rows(tmp_path), "text/csv")}
    )
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["job_id"]
    url = f"/v1/jobs/{job_id}/events"

    first = read_events(client, url, stop_after=2)
    last_id = [e.id for e in first.events if e.id][-1]
    rest = read_events(client, url, {"Last-Event-ID": str(last_id)})

    assert not first.ended
    assert rest.ended
    seen = [e.id for e in first.events + rest.events if e.name == "progress" and e.id]
    entries: Any = redis.Redis.from_url(redis_url).xrange(JobStore.events_key(job_id))
    assert seen == [entry_id.decode() for entry_id, _ in entries], "every event once, in order"
    assert len(seen) >= 5
    finals = [e for e in first.events + rest.events if e.name == "status"]
    assert len(finals) == 1
    assert finals[0] is rest.events[-1]
    assert '"status":"succeeded"' in finals[0].data
    assert '"rows_scored":1000000' in finals[0].data


def test_a_finished_job_sends_its_final_event_at_once(client: httpx.Client, stack: Stack) -> None:
    job_id = client.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]
    stack.wait(job_id)

    started = time.monotonic()
    reading = read_events(client, f"/v1/jobs/{job_id}/events")

    assert time.monotonic() - started < HEARTBEAT_SECONDS * 4
    assert [e.name for e in reading.events] == ["status"]
    assert '"species":"setosa"' in reading.events[0].data
    assert reading.ended


@pytest.fixture(scope="module")
def idle_api(stack: Stack, redis_url: str) -> Iterator[str]:
    """The API on a Redis database no worker consumes: its jobs stay queued until touched."""
    idle_url = redis_url.rsplit("/", 1)[0] + "/8"
    env = {
        **stack.env,
        "IRISQ_REDIS_URL": idle_url,
        "IRISQ_EVENTS_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
    }
    with api_process(env, stack.logs / "api-events-idle.log") as (url, _):
        yield url
    redis.Redis.from_url(idle_url).flushdb()


def test_a_stream_ends_on_time_even_between_heartbeats(stack: Stack, redis_url: str) -> None:
    """IRISQ_EVENTS_MAX_SECONDS ends a quiet stream at its time, not at the next heartbeat
    (here 60 s later): a client reconnects then, as EventSource does."""
    env = {
        **stack.env,
        "IRISQ_REDIS_URL": redis_url.rsplit("/", 1)[0] + "/8",  # no worker: the job stays queued
        "IRISQ_EVENTS_HEARTBEAT_SECONDS": "60",
        "IRISQ_EVENTS_MAX_SECONDS": "1",
    }
    with (
        api_process(env, stack.logs / "api-events-short.log") as (url, _),
        httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=60)) as client,
    ):
        job_id = client.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]
        started = time.monotonic()
        reading = read_events(client, f"/v1/jobs/{job_id}/events")
        took = time.monotonic() - started
        assert client.delete(f"/v1/jobs/{job_id}").status_code == 204

    assert reading.ended
    assert [e.name for e in reading.events] == ["progress"]
    assert 1 <= took < 30


@pytest.mark.parametrize("ending", ["cancel", "delete"])
def test_a_queued_job_gets_its_state_then_heartbeats_then_its_end(
    idle_api: str, ending: str
) -> None:
    with httpx.Client(base_url=idle_api, timeout=httpx.Timeout(10, read=60)) as client:
        job_id = client.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]
        reading = Reading()
        follower = threading.Thread(
            target=read_events, args=(client, f"/v1/jobs/{job_id}/events", None, 0, reading)
        )
        follower.start()
        wait_for(lambda: reading.comments >= 2, 30, "two heartbeats on a quiet stream")
        if ending == "cancel":
            assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
        else:
            assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
        follower.join(30)

    assert not follower.is_alive()
    assert reading.ended
    names = [e.name for e in reading.events]
    assert names == ["progress", "status" if ending == "cancel" else "deleted"]
    assert '"status":"queued"' in reading.events[0].data
    if ending == "cancel":
        assert '"status":"canceled"' in reading.events[1].data


def test_another_keys_or_an_unknown_job_is_404_and_a_bad_last_event_id_422(
    client: httpx.Client,
) -> None:
    unknown = client.get("/v1/jobs/00000000-0000-4000-8000-000000000000/events")
    job_id = client.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]
    bad = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "yesterday"})
    # Past what a Redis stream id holds (2**64 - 1): refused, not an error of Redis mid-stream.
    huge = client.get(f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "1-" + "9" * 20})

    assert unknown.status_code == 404
    for refused in (bad, huge):
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "Last-Event-ID"
