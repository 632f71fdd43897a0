"""Fault injection on real processes: a private Redis (append-only file) and workers per test.

Each test gets its own Redis, so killing it touches nothing else; the workers use the
session's MLflow registry (and its champion) unless a test starts its own server. Delivery
settings are shortened so re-delivery is seen in seconds, not the production hour:
the visibility timeout still exceeds every hard time limit, as the settings require.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from devstack.object_storage import S3Server
from devstack.processes import celery_worker, redis_server, wait_for
from irisq.batch_storage import BatchStorage, open_storage
from irisq.job_types import FINAL_STATUSES
from irisq.settings import Settings
from tests.support.stack import Stack
from tests.support.storage import aws_credentials

FAULT_ENV = {
    "IRISQ_VISIBILITY_TIMEOUT_SECONDS": "22",
    "IRISQ_PREDICT_TIME_LIMIT_SECONDS": "15",  # a cold process loads the model first
    "IRISQ_BATCH_TIME_LIMIT_SECONDS": "10",
    "IRISQ_TRAIN_TIME_LIMIT_SECONDS": "20",  # MLflow logging alone takes seconds here
    "IRISQ_RECONCILE_AFTER_SECONDS": "3",
    "IRISQ_RECONCILE_EVERY_SECONDS": "1",
    "IRISQ_BOOTSTRAP_CHAMPION": "false",
    "IRISQ_CHAMPION_REFRESH_SECONDS": "0.5",
    # A burst of hundreds of submissions from one client is the point here, not abuse.
    "IRISQ_RATE_LIMIT_PER_SECOND": "0",
}
# Collected by every fault test, printed as one table at the end of the run.
TALLIES: list[dict[str, Any]] = []


@dataclass
class FaultStack:
    """A private Redis, an API on it, and helpers to start, kill and read workers."""

    root: Path
    redis_port: int
    settings: Settings
    env: dict[str, str]
    api: TestClient
    storage: BatchStorage
    s3: S3Server | None = None  # with batches in object storage: its server, to break
    worker_logs: list[Path] = field(default_factory=list)

    def has_files(self, job_id: str) -> bool:
        return self.storage.size(job_id) > 0

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    def restart_redis(self) -> AbstractContextManager[str]:
        """The same Redis again (port, data dir): it reloads its append-only file."""
        return redis_server(self.redis_dir, port=self.redis_port)

    def redis(self) -> redis.Redis:
        client: redis.Redis = self.api.app.state.resources.redis  # type: ignore[attr-defined]
        return client

    def worker(
        self, queue: str, name: str, env: dict[str, str] | None = None, concurrency: int = 1
    ) -> AbstractContextManager[subprocess.Popen[bytes]]:
        log = self.root / f"{name}-{len(self.worker_logs)}.log"
        self.worker_logs.append(log)
        return celery_worker(queue, name, {**self.env, **(env or {})}, log, concurrency)

    def wait_worker_ready(self, queue: str, deadline_seconds: float = 60) -> None:
        wait_for(
            lambda: self.api.get("/readyz").json()["checks"][f"{queue}_workers"]["ok"],
            deadline_seconds,
            f"a worker on the {queue} queue",
            every=0.2,
        )

    def log_count(self, pattern: str) -> int:
        """Lines matching `pattern` in every worker log of this test."""
        regex = re.compile(pattern)
        return sum(
            1
            for log in self.worker_logs
            if log.exists()
            for line in log.read_text(errors="replace").splitlines()
            if regex.search(line)
        )

    def job(self, job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = self.api.get(f"/v1/jobs/{job_id}").json()
        return job

    def wait(self, job_id: str, deadline_seconds: float) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job.get("status") in FINAL_STATUSES else None

        return wait_for(final, deadline_seconds, f"job {job_id} finished", every=0.1)

    def upload(self, content: bytes) -> str:
        """Upload a batch; its job id."""
        response = self.api.post("/v1/batches", files={"file": ("big.csv", content, "text/csv")})
        assert response.status_code == 202, response.text
        job_id: str = response.json()["job_id"]
        return job_id

    def wait_running(self, job_id: str, progress: float = 0.0) -> dict[str, Any]:
        """Wait until the job runs and has passed `progress`: the moment to break things."""

        def running() -> dict[str, Any] | None:
            job = self.job(job_id)
            assert job["status"] in ("queued", "running"), job
            return job if job["status"] == "running" and job["progress"] > progress else None

        return wait_for(running, 60, f"job {job_id} running past {progress:.0%}", every=0.02)

    def tally(self, fault: str, accepted: list[str], deadline_seconds: float) -> dict[str, Any]:
        """Wait for every accepted job, then count: completed, lost, and duplicated (a job
        whose result was stored by more than one delivery)."""
        completed = lost = duplicated = 0
        for job_id in accepted:
            try:
                job = self.wait(job_id, deadline_seconds)
            except TimeoutError:
                lost += 1
                continue
            completed += job["status"] == "succeeded"
            # "job succeeded [job X]" or a group's "N jobs succeeded in T ms: X Y Z"
            stored = self.log_count(
                rf"job succeeded( in [\d.]+ ms)? \[job {job_id}\]|jobs succeeded in .*{job_id}"
            )
            duplicated += max(0, stored - 1)
        row = {
            "fault": fault,
            "accepted": len(accepted),
            "completed": completed,
            "lost": lost,
            "duplicated": duplicated,
        }
        TALLIES.append(row)
        print(f"\n{fault}: {row}")
        return row


MEASUREMENTS = ["5.1,3.5,1.4,0.2", "7.0,3.2,4.7,1.4", "6.3,3.3,6.0,2.5", "5.9,3.0,5.1,1.8"]


def big_csv(path: Path, rows: int) -> bytes:
    """A file that takes a predict worker a few seconds: time enough to break things."""
    lines = ["sepal_length,sepal_width,petal_length,petal_width"]
    lines += [MEASUREMENTS[i % len(MEASUREMENTS)] for i in range(rows)]
    content = ("\n".join(lines) + "\n").encode()
    path.write_bytes(content)
    return content


def kill_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send `sig` to the worker and its pool children (they share its process group)."""
    os.killpg(process.pid, sig)


@pytest.fixture
def fault_stack(
    stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[FaultStack]:
    """Needs the session stack only for its MLflow server and bootstrapped champion.

    Parametrised indirectly with "s3", its batches live in a private SeaweedFS server (no
    batch folder at all) that the test may kill and start again."""
    on_s3 = getattr(request, "param", "local") == "s3"
    with ExitStack() as running:
        redis_url = running.enter_context(redis_server(tmp_path / "redis"))
        port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        storage_env: dict[str, str] = {}
        s3 = None
        if on_s3:
            s3 = S3Server(tmp_path / "s3")
            running.callback(s3.stop)
            endpoint = s3.start()
            storage_env = endpoint.env("irisq-faults")
            running.enter_context(aws_credentials(endpoint))
        settings = Settings(
            redis_url=redis_url,
            mlflow_tracking_uri=stack.settings.mlflow_tracking_uri,
            mlflow_ui_url=stack.settings.mlflow_ui_url,
            models_dir=tmp_path / "models",
            batch_dir=tmp_path / "batches",
            batch_storage_url=storage_env.get("IRISQ_BATCH_STORAGE_URL"),
            s3_endpoint_url=storage_env.get("IRISQ_S3_ENDPOINT_URL"),
            **{k.removeprefix("IRISQ_").lower(): v for k, v in FAULT_ENV.items()},  # type: ignore[arg-type]
        )
        env = {
            **FAULT_ENV,
            **storage_env,
            "IRISQ_REDIS_URL": redis_url,
            "IRISQ_MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "IRISQ_MODELS_DIR": str(settings.models_dir),
            "IRISQ_BATCH_DIR": str(settings.batch_dir),
        }
        api = running.enter_context(TestClient(create_app(settings)))
        yield FaultStack(tmp_path, port, settings, env, api, open_storage(settings), s3)
        if on_s3:
            assert not settings.batch_dir.exists()  # nothing went to a local folder


BOTH_STORAGES = pytest.mark.parametrize("fault_stack", ["local", "s3"], indirect=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TALLIES:
        return
    terminalreporter.section("fault tests: accepted / completed / lost / duplicated")
    for row in TALLIES:
        terminalreporter.write_line(
            f"{row['fault']:<58} {row['accepted']:>5} {row['completed']:>5} "
            f"{row['lost']:>5} {row['duplicated']:>5}"
        )
