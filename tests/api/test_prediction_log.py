"""The prediction log on the real stack: a prediction answered by the predict worker is in
the train worker's Parquet files within seconds, with its job, version and answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from devstack.processes import wait_for
from irisq.schema import FEATURES
from tests.support.stack import SETOSA, VIRGINICA, Stack
from worker import prediction_log


def _logged(stack: Stack, job_id: str, since: datetime) -> dict[str, list[Any]] | None:
    table = prediction_log.read(
        stack.settings.prediction_log_dir, since, datetime.now(UTC) + timedelta(minutes=1)
    ).to_pydict()
    rows = [i for i, owner in enumerate(table["job_id"]) if owner == job_id]
    return {name: [values[i] for i in rows] for name, values in table.items()} if rows else None


def test_a_prediction_is_logged_with_its_job_version_and_answer(stack: Stack) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    job = stack.predict([SETOSA, VIRGINICA])
    assert job["status"] == "succeeded", job

    logged = wait_for(lambda: _logged(stack, job["job_id"], since), 60, "the prediction in the log")

    result = job["result"]
    assert logged["model_version"] == [result["model_version"]] * 2
    assert logged["species"] == [p["species"] for p in result["predictions"]]
    for name in FEATURES:
        assert logged[name] == pytest.approx([SETOSA[name], VIRGINICA[name]], abs=1e-6)
    assert logged["probability_setosa"] == pytest.approx(
        [p["probabilities"]["setosa"] for p in result["predictions"]], abs=1e-6
    )
    assert all(since <= t <= datetime.now(UTC) for t in logged["time"])


def test_a_batch_file_leaves_a_share_of_its_rows(stack: Stack) -> None:
    generator = np.random.default_rng(9)
    rows = np.round(generator.uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], (20_000, 4)), 1)
    content = (
        "sepal_length,sepal_width,petal_length,petal_width\n"
        + "\n".join(",".join(str(v) for v in row) for row in rows.tolist())
        + "\n"
    ).encode()
    since = datetime.now(UTC) - timedelta(seconds=1)

    job = stack.batch(content)
    assert job["status"] == "succeeded", job

    logged = wait_for(lambda: _logged(stack, job["job_id"], since), 60, "the batch's sample")
    assert set(logged["kind"]) == {"batch"}
    assert set(logged["model_version"]) == {job["result"]["model_version"]}
    assert 100 < len(logged["species"]) < 320  # ~1 % of 20,000 (IRISQ_PREDICTION_LOG_BATCH_SHARE)
    known = {tuple(row) for row in rows.tolist()}
    assert all(
        tuple(values) in known for values in zip(*(logged[f] for f in FEATURES), strict=True)
    )
