"""Job metrics that workers write to Redis and the API's `/metrics` exports.

Workers are many processes on possibly many hosts (Celery's prefork pool, `--scale`), so
they do not serve metrics themselves: each finished job adds to a few Redis hashes in one
pipelined write, and whoever scrapes the API sees the totals of every worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import redis
from redis.client import Pipeline

from irisq.job_types import FINAL_STATUSES, JobKind
from irisq.jobs import as_text

PREFIX: Final = "irisq:metrics:"
JOB_SECONDS: Final = PREFIX + "job_seconds:"
PREDICTIONS: Final = PREFIX + "predictions"
# From a single-row prediction (~ms) to a long training or a 10M-row batch (~minutes).
# A job's duration is counted in the first bucket whose bound it does not pass (`in:` + bound).
IN_BUCKET: Final = "in:"
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def record_job(
    client: redis.Redis,
    kind: str,
    status: str,
    seconds: float,
    species: dict[str, int],
    model_version: str | None,
) -> None:
    """Count one finished job: its duration, and the species it predicted with which model."""
    with client.pipeline(transaction=False) as pipe:
        add_job(pipe, kind, status, seconds, species, model_version)
        pipe.execute()


def add_job(
    pipe: Pipeline,
    kind: str,
    status: str,
    seconds: float,
    species: dict[str, int],
    model_version: str | None,
    jobs: int = 1,
) -> None:
    """Queue the writes of `record_job` on `pipe`; `jobs` jobs that took `seconds` each
    (a micro-batch's jobs end together: one set of writes for all, not one per job)."""
    key = f"{JOB_SECONDS}{kind}:{status}"
    pipe.hincrbyfloat(key, "sum", seconds * jobs)
    pipe.hincrby(key, "count", jobs)
    # Only the bucket it falls in (one write, not one per bucket above it): the reader adds
    # them up. Past the last bound, `count` alone says so.
    bound = next((bound for bound in BUCKETS if seconds <= bound), None)
    if bound is not None:
        pipe.hincrby(key, f"{IN_BUCKET}{bound}", jobs)
    for name, count in species.items():
        if count:
            pipe.hincrby(PREDICTIONS, f"{model_version}:{name}", count)


# Every end a job's delivery can have ("dropped": another delivery had ended it). The
# histograms are read by name, never by scanning Redis's keys (a scan visits every record).
ENDS: Final = (*sorted(FINAL_STATUSES), "dropped")


def job_histograms(
    client: redis.Redis,
) -> Iterator[tuple[str, str, list[tuple[str, float]], float]]:
    """(kind, status, cumulative buckets, sum) for each kind and status seen.

    Counts written before 2026-12-08 are cumulative already (`le:` fields): they are added
    as they are."""
    pairs = [(kind.value, status) for kind in JobKind for status in ENDS]
    with client.pipeline(transaction=False) as pipe:
        for kind, status in pairs:
            pipe.hgetall(f"{JOB_SECONDS}{kind}:{status}")
        found = pipe.execute()
    for (kind, status), raw in zip(pairs, found, strict=True):
        if not raw:
            continue
        fields = {as_text(k): float(v) for k, v in raw.items()}
        below = 0.0
        buckets = []
        for bound in BUCKETS:
            below += fields.get(f"{IN_BUCKET}{bound}", 0.0)
            buckets.append((str(bound), below + fields.get(f"le:{bound}", 0.0)))
        buckets.append(("+Inf", fields.get("count", 0.0)))
        yield kind, status, buckets, fields.get("sum", 0.0)


def predictions(client: redis.Redis) -> Iterator[tuple[str, str, float]]:
    """(model version, species, rows predicted) totals."""
    for field, value in client.hgetall(PREDICTIONS).items():
        version, species = as_text(field).rsplit(":", 1)
        yield version, species, float(value)
