"""What one trip through Celery costs a lone task, per worker pool: the floor under irisq's
latency for one prediction at a time.

    .venv/bin/python -m benchmarks.celery_pools [--tasks 2000]

Starts a private Redis and, for each pool (prefork with 2 processes as irisq's predict
worker runs, solo, threads), a Celery worker with irisq's own Celery configuration
(irisq.queueing: late acknowledgement, one message reserved per process, JSON) and one
task that does nothing but announce its end on Redis pub/sub, as irisq's jobs do. The client
sends one task, waits for its announcement, sends the next; it prints the median and 90th
percentile of that round trip per pool, after a warm-up of 200 tasks.

It measures the queue alone (no job record, no model, no HTTP), from the send to the client
hearing the end: one pub/sub hop more than the queue's own part of a prediction. irisq's
lone prediction pays this plus its API (HTTP, the rate limit, the job's record) and its job
(start, score, store), docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import ExitStack

import redis
from celery import Celery

from benchmarks.scratch import scratch_folder
from devstack.processes import BIN, redis_server, running, wait_for
from irisq.queueing import make_celery
from irisq.settings import Settings

TASK = "irisq-benchmark.announce"
CHANNEL = "irisq-benchmark:done"
WARM_UP = 200
POOLS = {"prefork": 2, "solo": 1, "threads": 2}


def make_app(redis_url: str) -> Celery:
    """The app both sides use: irisq's own Celery configuration (irisq.queueing), one task
    (sent to, and consumed from, its default queue)."""
    app = make_celery(Settings(redis_url=redis_url), main="irisq-benchmark")
    announcer = redis.Redis.from_url(redis_url)

    @app.task(name=TASK)  # type: ignore[untyped-decorator]  # Celery's decorator is untyped
    def announce(token: str) -> None:
        announcer.publish(CHANNEL, token)

    return app


# The worker's side: `celery -A benchmarks.celery_pools worker` finds this app.
app = make_app(os.environ.get("IRISQ_BENCHMARK_REDIS_URL", "redis://127.0.0.1:6379/15"))


def round_trips(client_app: Celery, redis_url: str, tasks: int) -> list[float]:
    """Milliseconds from sending each task to hearing its announcement, one at a time."""
    subscription = redis.Redis.from_url(redis_url).pubsub()  # type: ignore[no-untyped-call]
    try:
        subscription.subscribe(CHANNEL)
        subscription.get_message(timeout=1)  # the subscription's confirmation
        took = []
        for number in range(WARM_UP + tasks):
            token = f"{time.time_ns()}-{number}"  # a late answer to an earlier try is not it
            started = time.perf_counter()
            client_app.send_task(TASK, args=[token])
            while True:
                message = subscription.get_message(timeout=10)
                if message is None:
                    raise TimeoutError(f"task {number} was not announced within 10 s")
                if message["type"] == "message" and message["data"].decode() == token:
                    break
            took.append((time.perf_counter() - started) * 1000)
    finally:
        subscription.close()
    return took[WARM_UP:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; {args.tasks:,} tasks per pool, one at a time")
    with scratch_folder("irisq-celery-pools-", args.keep) as work, ExitStack() as stack:
        redis_url = stack.enter_context(redis_server(work / "redis"))
        client_app = make_app(redis_url)
        env = {"IRISQ_BENCHMARK_REDIS_URL": redis_url}
        for pool, processes in POOLS.items():
            command = [
                str(BIN / "celery"),
                *("-A", "benchmarks.celery_pools", "worker", "-Q", "predict", "-P", pool),
                *("--concurrency", str(processes), "--loglevel", "WARNING"),
                *("--without-mingle", "--without-gossip", "-n", f"{pool}@%h"),
            ]
            with running(command, work / f"worker-{pool}.log", env) as worker:
                # The worker is up once it takes a task: the first round trip waits for it.
                wait_for(lambda: round_trips(client_app, redis_url, 1), 60, f"{pool} worker")
                took = round_trips(client_app, redis_url, args.tasks)
                assert worker.poll() is None, f"the {pool} worker stopped"
            p50 = statistics.median(took)
            p90 = statistics.quantiles(took, n=10)[-1]
            print(f"{pool:8s} ({processes} at once): p50 {p50:.2f} ms, p90 {p90:.2f} ms")


if __name__ == "__main__":
    main()
