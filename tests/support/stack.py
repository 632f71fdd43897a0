"""A handle on the running test stack, with the client-side helpers tests share."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from devstack.processes import wait_for
from irisq.job_types import FINAL_STATUSES
from irisq.settings import Settings

SETOSA = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
VERSICOLOR = {"sepal_length": 6.4, "sepal_width": 3.2, "petal_length": 4.5, "petal_width": 1.5}
VIRGINICA = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def metric_samples(text: str) -> Samples:
    """A Prometheus exposition as {(sample name, its labels): value}."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@dataclass
class Stack:
    api: TestClient
    settings: Settings
    logs: Path
    predict_worker: subprocess.Popen[bytes]
    train_worker: subprocess.Popen[bytes] | None  # none in the S3 stack: the champion is shared
    env: dict[str, str]  # what its processes run with: give it to any other one started

    def wait(self, job_id: str, deadline_seconds: float = 60) -> dict[str, Any]:
        """Poll the job until it is final; fail past the deadline."""

        def final() -> dict[str, Any] | None:
            job: dict[str, Any] = self.api.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] in FINAL_STATUSES else None

        return wait_for(final, deadline_seconds, f"job {job_id} finished", every=0.05)

    def predict(self, rows: list[dict[str, float]], **extra: Any) -> dict[str, Any]:
        response = self.api.post("/v1/predictions", json={"rows": rows, **extra})
        assert response.status_code == 202, response.text
        return self.wait(response.json()["job_id"])

    def serving(self, version: str) -> None:
        """Wait until predictions are scored by `version`. A worker re-reads the champion
        alias every few tenths of a second, so a test that moved the champion calls this
        before the next test relies on whom the API names champion."""

        def scored_by_it() -> bool:
            return bool(self.predict([SETOSA])["result"]["model_version"] == version)

        wait_for(scored_by_it, 30, f"predictions scored by version {version}", every=0.2)

    def upload(
        self, content: bytes, on_invalid: str = "reject", filename: str = "flowers.csv"
    ) -> Any:
        return self.api.post(
            "/v1/batches",
            params={"on_invalid": on_invalid},
            files={"file": (filename, content, "text/csv")},
        )

    def batch(self, content: bytes, on_invalid: str = "reject") -> dict[str, Any]:
        """Upload, expect 202, and wait for the job to finish."""
        response = self.upload(content, on_invalid)
        assert response.status_code == 202, response.text
        return self.wait(response.json()["job_id"])

    def train(self, algorithm: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.api.post(
            "/v1/training", json={"algorithm": algorithm, "params": params or {}}
        )
        assert response.status_code == 202, response.text
        return self.wait(response.json()["job_id"], deadline_seconds=120)
