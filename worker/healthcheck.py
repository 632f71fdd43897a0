"""Container health of a worker: exit 0 when this host's worker sent a recent heartbeat.

Reads the heartbeat keys the worker refreshes in Redis (irisq.workers), so the check is one
fast read and says "consuming its queue", not merely "process exists".
"""

from __future__ import annotations

import socket
import sys

import redis

from irisq.settings import get_settings
from irisq.tasks import WORKER_QUEUES
from irisq.workers import live_workers


def main() -> int:
    host = socket.gethostname()
    client = redis.Redis.from_url(get_settings().redis_url, socket_timeout=3)
    mine = [
        w for queue in WORKER_QUEUES for w in live_workers(client, queue) if w.endswith("@" + host)
    ]
    print(", ".join(mine) or f"no heartbeat from a worker on {host}")
    return 0 if mine else 1


if __name__ == "__main__":
    sys.exit(main())
