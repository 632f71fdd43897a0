"""Job metrics as workers write them and `/metrics` reads them, on a real Redis."""

from __future__ import annotations

import redis

from irisq import metrics
from tests.worker.conftest import redis_database


def test_durations_read_back_as_cumulative_buckets_with_older_counts_added(
    redis_url: str,
) -> None:
    with redis_database(redis_url, 13) as client:
        metrics.record_job(client, "prediction", "succeeded", 0.003, {}, None)
        with client.pipeline(transaction=False) as pipe:
            metrics.add_job(pipe, "prediction", "succeeded", 0.07, {"setosa": 2}, "1", jobs=2)
            metrics.add_job(pipe, "prediction", "succeeded", 400.0, {}, None)  # past the last
            pipe.execute()
        # Counts an older worker wrote: every bucket the duration fits, and the totals.
        _older_write(client, 0.2)

        [(kind, status, buckets, total)] = list(metrics.job_histograms(client))

    bounds = dict(buckets)
    assert (kind, status) == ("prediction", "succeeded")
    assert [bounds["0.005"], bounds["0.05"], bounds["0.1"], bounds["0.25"]] == [1, 1, 3, 4]
    assert [bounds["300.0"], bounds["+Inf"]] == [4, 5]
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)
    assert round(total, 6) == round(0.003 + 2 * 0.07 + 400.0 + 0.2, 6)


def _older_write(client: redis.Redis, seconds: float) -> None:
    key = f"{metrics.JOB_SECONDS}prediction:succeeded"
    client.hincrbyfloat(key, "sum", seconds)
    client.hincrby(key, "count", 1)
    for bound in metrics.BUCKETS:
        if seconds <= bound:
            client.hincrby(key, f"le:{bound}", 1)
