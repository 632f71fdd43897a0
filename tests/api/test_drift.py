"""Drift on the real stack: rows sent to /invocations are logged by the predict worker,
drained by the train worker, and judged by it when the API is asked for a window."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import redis
from sklearn.datasets import load_iris

from devstack.processes import wait_for
from irisq.celery_messages import UNACKED
from irisq.drift import COMPUTING
from irisq.schema import FEATURES
from irisq.tasks import TRAIN_QUEUE
from tests.support.stack import Stack, metric_samples
from worker import prediction_log

ROWS = 5_000


def _next_second() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=0) + timedelta(seconds=1)


def _send(stack: Stack, flowers: np.ndarray) -> tuple[datetime, datetime]:
    """Score `flowers` through /invocations; the whole-second window their log rows are in."""
    since = _next_second()
    wait_for(lambda: datetime.now(UTC) >= since, 5, "the next second")
    body = {"dataframe_split": {"columns": list(FEATURES), "data": flowers.tolist()}}
    response = stack.api.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    until = _next_second()
    wait_for(
        lambda: (
            prediction_log.read(stack.settings.prediction_log_dir, since, until).num_rows >= ROWS
        ),
        60,
        f"{ROWS} rows in the prediction log",
    )
    wait_for(lambda: datetime.now(UTC) >= until, 5, "the window's end")
    return since, until


def _drift(stack: Stack, since: datetime, until: datetime) -> dict[str, Any]:
    response = stack.api.get(
        "/v1/monitoring/drift", params={"since": since.isoformat(), "until": until.isoformat()}
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_iris_flowers_do_not_drift_and_longer_petals_do(stack: Stack) -> None:
    iris = load_iris()
    flowers = iris.data[np.random.default_rng(2026).integers(0, len(iris.data), ROWS)]
    longer = flowers + np.array([0, 0, 2.0, 0])

    plain = _drift(stack, *_send(stack, flowers))
    shifted_window = _send(stack, longer)
    shifted = _drift(stack, *shifted_window)
    again = _drift(stack, *shifted_window)  # the same window: from the cache

    assert plain["rows"] == ROWS
    assert plain["drift"] is False
    assert plain["drifted_features"] == []
    assert shifted["rows"] == ROWS
    assert shifted["drift"] is True
    assert shifted["drifted_features"] == ["petal_length"]
    petal = shifted["features"]["petal_length"]
    assert petal["psi"] > shifted["thresholds"]["psi"]
    assert petal["ks_pvalue"] < shifted["thresholds"]["ks_pvalue"]
    assert again["computed_at"] == shifted["computed_at"]
    # One report at a time, and the turn is released as soon as each is computed.
    assert not redis.Redis.from_url(stack.settings.redis_url).exists(COMPUTING)
    samples = metric_samples(stack.api.get("/metrics").text)
    assert samples["irisq_drift_detected", frozenset({("feature", "petal_length")})] == 1
    assert samples["irisq_drift_detected", frozenset({("feature", "sepal_width")})] == 0
    assert samples["irisq_drift_rows", frozenset()] == ROWS


def test_a_window_without_rows_has_no_verdict(stack: Stack) -> None:
    report = _drift(stack, datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 1, 2, tzinfo=UTC))

    assert (report["rows"], report["drift"], report["features"]) == (0, None, {})


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "since"),
        ({"since": "2026-10-01T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "31 days"),
        ({"since": "yesterday"}, "since"),
        ({"until": "x" * 5000}, "until"),
    ],
    ids=["reversed", "too-long", "not-a-time", "huge"],
)
def test_a_bad_window_is_refused_naming_it(
    stack: Stack, params: dict[str, str], names: str
) -> None:
    response = stack.api.get("/v1/monitoring/drift", params=params)

    assert response.status_code == 422, response.text
    assert names in response.text


def test_many_windows_at_once_queue_one_drift_task_at_a_time(stack: Stack) -> None:
    """A caller asking for many windows cannot fill the train queue: one report at a time."""
    client = redis.Redis.from_url(stack.settings.redis_url)
    deepest, done = [0], threading.Event()

    def outstanding() -> int:
        """Drift tasks queued or being computed (delivered, not yet acknowledged)."""
        messages = [*client.lrange(TRAIN_QUEUE, 0, -1), *client.hvals(UNACKED)]
        return sum(b'"task": "irisq.drift"' in m or b'"irisq.drift"' in m for m in messages)

    def watch() -> None:
        while not done.is_set():
            deepest[0] = max(deepest[0], outstanding())
            time.sleep(0.002)

    def ask(hours: int) -> int:
        until = datetime(2025, 6, 1, tzinfo=UTC) + timedelta(hours=hours)
        params = {"since": (until - timedelta(hours=1)).isoformat(), "until": until.isoformat()}
        return int(stack.api.get("/v1/monitoring/drift", params=params).status_code)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(ask, range(6)))
    finally:
        done.set()
        watcher.join()

    print(f"\n6 windows asked at once: answers {answers}, {deepest[0]} drift task at most")
    assert answers == [200] * 6
    assert deepest[0] == 1  # seen at work, and never two
