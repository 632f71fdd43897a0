"""Only models irisq trained are loaded, and a hung registry costs milliseconds.

A registry of its own (a real MLflow server), with a champion trained and signed here, a
predict worker and an API (its own uvicorn process) on it: the attacks below register
models in it, move its alias, and stop its server.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import mlflow
import mlflow.sklearn
import pytest
import redis
from mlflow.tracking import MlflowClient

from devstack.processes import api_process, celery_worker, mlflow_server, wait_for
from irisq.model_signatures import SIGNATURE_TAG
from irisq.settings import Settings
from tests.security.conftest import ADMIN, ALICE, KEYS, bearer
from tests.support.stack import SETOSA, Stack
from worker.training import train_and_register

pytestmark = pytest.mark.slow


class Trap:
    """Unpickling this touches `marker`: proof that a process ran code from a model file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.marker,))


@dataclass
class Registry:
    url: str
    api: str
    mlflow_group: int  # the server and its workers: stopped and resumed together
    champion: str
    settings: Settings

    def predict(self, rows: list[dict[str, float]], model: str = "champion") -> dict[str, Any]:
        response = httpx.post(
            f"{self.api}/v1/predictions?wait=30",
            json={"rows": rows, "model": model},
            headers=bearer(ALICE),
            timeout=60,
        )
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        return job


@pytest.fixture(scope="module")
def registry(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    root = tmp_path_factory.mktemp("own-registry")
    with mlflow_server(root / "mlflow") as url:
        settings = stack.settings.model_copy(
            update={"mlflow_tracking_uri": url, "models_dir": root / "models"}
        )
        champion = train_and_register("logistic_regression", {}, settings).model_version
        # A Redis database of its own: the session's workers must not take these tasks.
        redis_url = stack.settings.redis_url.rsplit("/", 1)[0] + "/5"
        redis.Redis.from_url(redis_url).flushdb()
        env = {
            **stack.env,
            "IRISQ_REDIS_URL": redis_url,
            "IRISQ_MLFLOW_TRACKING_URI": url,
            "IRISQ_MODELS_DIR": str(settings.models_dir),
            "IRISQ_API_KEYS": json.dumps(KEYS),
        }
        group = os.getpgid(_server_pid(root / "mlflow"))
        with (
            celery_worker("predict", "own-registry", env, root / "predict.log"),
            api_process(env, root / "api.log") as (api, _),
        ):
            wait_for(
                lambda: httpx.get(f"{api}/readyz", timeout=30).json()["ready"],
                120,
                "the API ready on its own registry",
                every=0.5,
            )
            yield Registry(url, api, group, champion, settings)
        mlflow.set_tracking_uri(stack.settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(stack.settings.mlflow_tracking_uri)


def _server_pid(data_dir: Path) -> int:
    """The `mlflow server` process on `data_dir` (the parent of its gunicorn/uvicorn)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"server" in command and any(str(data_dir).encode() in part for part in command):
            return int(proc.name)
    raise RuntimeError("no mlflow server process found")


def _register_trap(registry: Registry, marker: Path) -> str:
    """A cloudpickle model whose loading runs code, registered as anyone could (no key)."""
    mlflow.set_tracking_uri(registry.url)
    mlflow.set_registry_uri(registry.url)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            Trap(marker), name="model", serialization_format="cloudpickle", pip_requirements=[]
        )
    version = str(mlflow.register_model(info.model_uri, "iris").version)
    marker.unlink(missing_ok=True)  # MLflow itself unpickles it while logging, here
    return version


def test_a_pickled_model_is_never_loaded(registry: Registry, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    version = _register_trap(registry, marker)

    job = _failed_job(registry, version)

    assert job["error"]["type"] == "untrusted_model"
    assert "not trained by this irisq" in job["error"]["message"]
    assert not marker.exists()


def test_a_copied_signature_does_not_make_a_model_trusted(
    registry: Registry, tmp_path: Path
) -> None:
    marker = tmp_path / "code-ran"
    version = _register_trap(registry, marker)
    client = MlflowClient(registry.url, registry.url)
    genuine = client.get_model_version("iris", registry.champion).tags[SIGNATURE_TAG]
    client.set_model_version_tag("iris", version, SIGNATURE_TAG, genuine)

    job = _failed_job(registry, version)
    promotion = httpx.post(
        f"{registry.api}/v1/models/{version}/promote", headers=bearer(ADMIN), timeout=30
    )

    assert job["error"]["type"] == "untrusted_model"
    assert "not this irisq's" in job["error"]["message"]
    assert promotion.status_code == 409
    assert "no signature of this irisq" in promotion.json()["detail"]
    assert not marker.exists()


def test_an_alias_moved_behind_the_api_is_refused_too(registry: Registry, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    version = _register_trap(registry, marker)
    client = MlflowClient(registry.url, registry.url)
    client.set_registered_model_alias("iris", "champion", version)
    try:
        failed = wait_for(
            lambda: _champion_failure(registry),
            60,
            "a champion prediction refused after the alias moved",
            every=0.5,
        )
    finally:
        client.set_registered_model_alias("iris", "champion", registry.champion)

    assert failed["error"]["type"] == "untrusted_model"
    assert not marker.exists()


def test_a_challenger_that_cannot_score_never_fails_a_prediction(
    registry: Registry, tmp_path: Path
) -> None:
    """A challenger whose every shadow call raises (a pickled model the workers refuse to
    load, its alias set behind the API's back): predictions all succeed on the champion,
    the failures are counted, and the model's code never runs."""
    marker = tmp_path / "code-ran"
    version = _register_trap(registry, marker)
    refused = httpx.put(
        f"{registry.api}/v1/models/challenger",
        json={"version": int(version)},
        headers=bearer(ADMIN),
        timeout=30,
    )
    client = MlflowClient(registry.url, registry.url)
    client.set_registered_model_alias("iris", "challenger", version)
    try:
        wait_for(
            lambda: (
                registry.predict([SETOSA])["status"] == "succeeded" and _shadow_failures(registry)
            ),
            60,
            "the challenger's shadow calls failing",
            every=0.2,
        )
        jobs = [registry.predict([SETOSA]) for _ in range(200)]
        failures = _shadow_failures(registry)
    finally:
        client.delete_registered_model_alias("iris", "challenger")

    assert refused.status_code == 409  # the API would not have set it
    assert [job["status"] for job in jobs] == ["succeeded"] * 200
    assert {job["result"]["model_version"] for job in jobs} == {registry.champion}
    assert failures >= 1  # counted (asked again every 30 s: each try is a registry call)
    assert not marker.exists()


def _shadow_failures(registry: Registry) -> int:
    models = httpx.get(f"{registry.api}/v1/models", headers=bearer(ALICE), timeout=30).json()
    return int((models["shadow"] or {}).get("failures", 0))


def _champion_failure(registry: Registry) -> dict[str, Any] | None:
    job = registry.predict([SETOSA])
    return job if job["status"] == "failed" else None


def _failed_job(registry: Registry, version: str) -> dict[str, Any]:
    job = registry.predict([SETOSA], model=version)
    assert job["status"] == "failed", job
    return job


def test_a_hung_registry_costs_predictions_nothing(registry: Registry) -> None:
    """MLflow stopped (SIGSTOP: connections accepted, never answered), as a hung server is."""
    wait_for(  # warm, the champion known (an earlier test moved the alias and back)
        lambda: registry.predict([SETOSA])["status"] == "succeeded",
        60,
        "champion predictions served",
        every=0.5,
    )
    os.killpg(registry.mlflow_group, signal.SIGSTOP)
    try:
        seconds = []
        for _ in range(10):
            started = time.monotonic()
            job = registry.predict([SETOSA])
            seconds.append(time.monotonic() - started)
            assert job["status"] == "succeeded", job
        unknown = []
        for _ in range(2):
            started = time.monotonic()
            job = registry.predict([SETOSA], model="999")
            unknown.append((time.monotonic() - started, job["error"]["type"]))
        readiness = _readiness_under_load(registry)
    finally:
        os.killpg(registry.mlflow_group, signal.SIGCONT)
    resumed = time.monotonic()
    wait_for(  # the registry answers again: "unreachable" is forgotten at once, not in 15 s
        lambda: registry.predict([SETOSA], model="999")["error"]["type"] == "model_not_found",
        30,
        "the unknown version told apart again",
        every=0.2,
    )
    recovered = time.monotonic() - resumed
    print(
        f"\nMLflow hung: champion predictions {min(seconds) * 1000:.0f}-"
        f"{max(seconds) * 1000:.0f} ms; unknown version {unknown[0][0]:.2f} s then "
        f"{unknown[1][0] * 1000:.0f} ms; told apart again {recovered:.1f} s after MLflow "
        f"resumed; {readiness}"
    )

    assert max(seconds) < 2
    assert [kind for _, kind in unknown] == ["registry_unavailable"] * 2
    assert unknown[0][0] < 10  # one short try, no retries
    assert unknown[1][0] < 1  # remembered: no second try
    assert recovered < 8
    assert readiness["readyz_answers"] >= 200
    assert readiness["job_read_worst"] < 0.5
    assert readiness["registry_reported"]


def _readiness(registry: Registry) -> dict[str, Any] | None:
    answer = httpx.get(f"{registry.api}/readyz", timeout=30)
    return None if answer.status_code == 429 else dict(answer.json())


def _readiness_under_load(registry: Registry) -> dict[str, Any]:
    """200 /readyz calls from 20 threads, while a key reads its own job."""
    job_id = registry.predict([SETOSA])["job_id"]
    stop = threading.Event()
    answers: list[int] = []

    def hammer() -> None:
        with httpx.Client(base_url=registry.api, timeout=30) as client:
            while not stop.is_set() and len(answers) < 200:
                answers.append(client.get("/readyz").status_code)

    threads = [threading.Thread(target=hammer) for _ in range(20)]
    for thread in threads:
        thread.start()
    reads: list[float] = []
    with httpx.Client(base_url=registry.api, timeout=30) as client:
        deadline = time.monotonic() + 60
        while len(answers) < 200 and time.monotonic() < deadline:
            started = time.monotonic()
            assert client.get(f"/v1/jobs/{job_id}", headers=bearer(ALICE)).status_code == 200
            reads.append(time.monotonic() - started)
    stop.set()
    for thread in threads:
        thread.join()
    # The flood met the per-address limit of probes (429): ask again once it has passed.
    readiness = wait_for(lambda: _readiness(registry), 30, "/readyz answering again", every=0.5)
    return {
        "job_read_worst": max(reads),
        "readyz_answers": len(answers),
        "job_reads": len(reads),
        "registry_reported": readiness["checks"]["registry"]["ok"] is False
        and readiness["ready"] is True,
    }
