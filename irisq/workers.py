"""Worker heartbeats in Redis, so readiness checks are one fast read, not a broadcast.

Celery's `control.ping` waits out its whole timeout on every call; a heartbeat key with a
short TTL, refreshed by each worker, answers "is anyone consuming queue X?" in a millisecond.
"""

from __future__ import annotations

import redis

HEARTBEAT_PREFIX = "irisq:worker:"
HEARTBEAT_TTL_SECONDS = 15
HEARTBEAT_EVERY_SECONDS = 5


def heartbeat_key(queue: str, hostname: str) -> str:
    return f"{HEARTBEAT_PREFIX}{queue}:{hostname}"


def beat(client: redis.Redis, queues: list[str], hostname: str) -> None:
    """Say that `hostname` is alive and consuming `queues`."""
    with client.pipeline() as pipe:
        for queue in queues:
            pipe.set(heartbeat_key(queue, hostname), "1", ex=HEARTBEAT_TTL_SECONDS)
        pipe.execute()


def forget(client: redis.Redis, queues: list[str], hostname: str) -> None:
    """Remove the heartbeats of a worker that is shutting down."""
    client.delete(*(heartbeat_key(queue, hostname) for queue in queues))


def live_workers(client: redis.Redis, queue: str) -> list[str]:
    """Hostnames that sent a heartbeat for `queue` recently."""
    prefix = f"{HEARTBEAT_PREFIX}{queue}:"
    return sorted(
        key.decode()[len(prefix) :] for key in client.scan_iter(match=prefix + "*", count=100)
    )
