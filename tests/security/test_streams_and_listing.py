"""What one key can hold with event streams and listings: a real uvicorn on a Redis database
no worker consumes, so jobs stay queued and their streams stay open as long as we like."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
import redis

from api.listing import MAX_SCANNED
from devstack.processes import api_process
from irisq.job_types import JobKind
from irisq.jobs import JobStore
from irisq.keys import hash_key, new_key
from tests.support.stack import SETOSA, Stack

GREEDY, OTHER = new_key(), new_key()
KEYS = [
    {"name": "greedy", "role": "predict", "sha256": hash_key(GREEDY)},
    {"name": "other", "role": "predict", "sha256": hash_key(OTHER)},
]
STREAMS_PER_KEY = 16


@pytest.fixture(scope="module")
def idle_keyed(stack: Stack, redis_url: str) -> Iterator[tuple[str, str]]:
    idle_url = redis_url.rsplit("/", 1)[0] + "/9"
    env = {
        **stack.env,
        "IRISQ_REDIS_URL": idle_url,
        "IRISQ_API_KEYS": json.dumps(KEYS),
        "IRISQ_EVENTS_STREAMS_PER_KEY": str(STREAMS_PER_KEY),
    }
    with api_process(env, stack.logs / "api-idle-keyed.log") as (url, _):
        yield url, idle_url
    redis.Redis.from_url(idle_url).flushdb()


def client_for(url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx.Timeout(10, read=60),
    )


def test_one_key_holds_at_most_its_streams_and_others_go_on(
    idle_keyed: tuple[str, str],
) -> None:
    url, _ = idle_keyed
    with client_for(url, GREEDY) as greedy, client_for(url, OTHER) as other, ExitStack() as held:
        job_id = greedy.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]
        streams = [
            held.enter_context(greedy.stream("GET", f"/v1/jobs/{job_id}/events"))
            for _ in range(STREAMS_PER_KEY)
        ]
        assert {s.status_code for s in streams} == {200}
        # Each has begun (its first line is there) and stays open: its reader is kept.
        readers = [stream.iter_lines() for stream in streams]
        assert {next(reader).split(":")[0] for reader in readers} == {"retry"}

        started = time.perf_counter()
        refused = greedy.get(f"/v1/jobs/{job_id}/events", timeout=5)
        refused_ms = (time.perf_counter() - started) * 1000
        own_id = other.post("/v1/predictions", json={"rows": [SETOSA]}).json()["job_id"]
        with other.stream("GET", f"/v1/jobs/{own_id}/events") as theirs:
            assert theirs.status_code == 200
        reads_still = greedy.get(f"/v1/jobs/{job_id}")

    assert refused.status_code == 429
    assert "event streams open" in refused.json()["detail"]
    assert refused_ms < 1000
    assert reads_still.status_code == 200  # 16 streams leave the key room for other calls
    print(f"17th stream refused in {refused_ms:.0f} ms; the other key streamed; reads went on")


def test_a_filtered_listing_looks_at_a_bounded_number_of_jobs(
    idle_keyed: tuple[str, str],
) -> None:
    url, idle_url = idle_keyed
    # 5,000 queued jobs of one key, written straight to its Redis: none of them is running.
    store = JobStore(redis.Redis.from_url(idle_url), ttl_seconds=600)
    for start in range(0, 5000, 500):
        ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(start, start + 500)]
        store.create_many(JobKind.PREDICTION, dict.fromkeys(ids), dict.fromkeys(ids, "greedy"))

    pages, seen = 0, 0
    worst = 0.0
    with client_for(url, GREEDY) as greedy:
        cursor: str | None = None
        while True:
            started = time.perf_counter()
            query: dict[str, str | int] = {"status": "running", "limit": 200}
            if cursor:
                query["cursor"] = cursor
            page = greedy.get("/v1/jobs", params=query)
            worst = max(worst, time.perf_counter() - started)
            assert page.status_code == 200
            body = page.json()
            seen += len(body["jobs"])
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break

    assert seen == 0
    assert pages == -(-5000 // MAX_SCANNED)  # each request stopped after MAX_SCANNED entries
    print(f"5,000 non-matching jobs: {pages} requests, the slowest {worst * 1000:.0f} ms")


def test_concurrent_retries_of_an_upload_queue_one_batch(idle_keyed: tuple[str, str]) -> None:
    url, idle_url = idle_keyed
    content = b"sepal_length,sepal_width,petal_length,petal_width\n" + b"5.1,3.5,1.4,0.2\n" * 50_000
    answers: list[httpx.Response] = []

    def upload() -> None:
        with client_for(url, OTHER) as other:
            answers.append(
                other.post(
                    "/v1/batches",
                    files={"file": ("f.csv", content, "text/csv")},
                    headers={"Idempotency-Key": "upload-retry-1"},
                )
            )

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    accepted = [a for a in answers if a.status_code == 202]
    assert {a.status_code for a in answers} <= {202, 409}
    assert len({a.json()["job_id"] for a in accepted}) == 1
    batches = [
        key
        for key in redis.Redis.from_url(idle_url).scan_iter("irisq:job:*")
        if redis.Redis.from_url(idle_url).hget(key, "kind") == b"batch"
    ]
    assert len(batches) == 1
