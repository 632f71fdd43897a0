"""Worker heartbeats in Redis, so readiness checks are one fast read, not a broadcast.

Celery's `control.ping` waits out its whole timeout on every call. Instead each worker
writes the time of its last heartbeat into one sorted set per queue; "who consumes queue
X?" is then one range read by score, whatever else Redis holds (never a scan of its keys).
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aioredis

HEARTBEAT_PREFIX = "irisq:workers:"
HEARTBEAT_TTL_SECONDS = 15
HEARTBEAT_EVERY_SECONDS = 5


def heartbeat_key(queue: str) -> str:
    return f"{HEARTBEAT_PREFIX}{queue}"


# hostname → how many tasks it runs at once (its pool's processes): large batches are cut
# into as many parts at a time (worker.batch_parts).
PROCESSES_KEY = "irisq:worker-processes"


def beat(client: redis.Redis, queues: list[str], hostname: str, processes: int = 1) -> None:
    """Say that `hostname` is alive and consuming `queues` with `processes` pool processes
    (and forget long-silent ones)."""
    now = time.time()
    with client.pipeline() as pipe:
        for queue in queues:
            pipe.zadd(heartbeat_key(queue), {hostname: now})
            pipe.zremrangebyscore(heartbeat_key(queue), "-inf", now - 24 * 3600)
        pipe.hset(PROCESSES_KEY, hostname, processes)
        pipe.execute()


def forget(client: redis.Redis, queues: list[str], hostname: str) -> None:
    """Remove the heartbeats of a worker that is shutting down."""
    with client.pipeline() as pipe:
        for queue in queues:
            pipe.zrem(heartbeat_key(queue), hostname)
        pipe.hdel(PROCESSES_KEY, hostname)
        pipe.execute()


def _names(found: Any) -> list[str]:
    return sorted(n.decode() if isinstance(n, bytes) else str(n) for n in found)


def live_workers(client: redis.Redis, queue: str) -> list[str]:
    """Hostnames that sent a heartbeat for `queue` recently."""
    since = time.time() - HEARTBEAT_TTL_SECONDS
    return _names(client.zrangebyscore(heartbeat_key(queue), since, "+inf"))


def live_processes(client: redis.Redis, queue: str) -> int:
    """Pool processes of the workers alive on `queue` (1 for a worker that did not say)."""
    hosts = live_workers(client, queue)
    if not hosts:
        return 0
    counts = client.hmget(PROCESSES_KEY, hosts)
    return sum(int(count) if count and int(count) > 0 else 1 for count in counts)


async def live_workers_async(client: aioredis.Redis, queue: str) -> list[str]:
    since = time.time() - HEARTBEAT_TTL_SECONDS
    return _names(await client.zrangebyscore(heartbeat_key(queue), since, "+inf"))
