"""Commands sent now and read later (irisq.later), on a real Redis and real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import redis

from devstack.processes import wait_for
from irisq.job_types import Job, JobKind, JobStatus
from irisq.jobs import JobStore, StartOutcome
from irisq.later import RepliesLater


def test_replies_are_read_after_other_commands_and_the_connection_serves_again(
    redis_client: redis.Redis,
) -> None:
    key = f"later-{uuid.uuid4()}"
    with RepliesLater(redis_client, [("INCR", key), ("INCRBY", key, 5)], int) as sent:
        # Meanwhile the client's other connections go on (the worker's other writes).
        assert redis_client.set(f"{key}-other", "x")
        assert sent.replies() == [1, 6]
    assert redis_client.get(key) == b"6"  # the pool's connections answer their own commands


def test_replies_left_unread_never_reach_the_next_command(redis_client: redis.Redis) -> None:
    key = f"later-{uuid.uuid4()}"
    redis_client.set(key, "mine")
    pool = redis_client.connection_pool
    # A reply that comes late (BLPOP on an empty list answers when its timeout ends): a
    # connection handed back unread would give it to the next command as its own.
    for _ in range(3 * max(1, len(pool._available_connections))):
        with RepliesLater(redis_client, [("BLPOP", f"{key}-empty", 0.2)], list):
            pass  # left without reading (a model error, say)
        assert redis_client.get(key) == b"mine"


def test_a_worker_killed_after_sending_its_starts_has_counted_them(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    store = JobStore(client, ttl_seconds=60)
    job_id = str(uuid.uuid4())
    store.create(JobKind.PREDICTION, job_id)
    # A process sends the start, then dies before reading its reply (SIGKILL: no cleanup).
    doomed = textwrap.dedent(f"""
        import os, signal, redis
        from irisq.jobs import JobStore
        store = JobStore(redis.Redis.from_url({redis_url!r}), ttl_seconds=60)
        sent = store.send_starts([{job_id!r}])
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    finished = subprocess.run([sys.executable, "-c", doomed], timeout=120, check=False)
    assert finished.returncode == -9

    def counted() -> Job | None:
        job = store.get(job_id)
        return job if job is not None and job.attempts == 1 else None

    assert wait_for(counted, 10, "the killed worker's start applied").status is JobStatus.RUNNING
    assert store.start(job_id) is StartOutcome.STARTED  # the next delivery's attempt
    assert store.get(job_id).attempts == 2  # type: ignore[union-attr]
    client.close()
