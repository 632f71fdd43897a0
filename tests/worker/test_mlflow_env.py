"""MLflow's environment is set by the worker's configuration, not by importing a module."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from worker.mlflow_env import configure_mlflow

NAMES = (
    "MLFLOW_LOG_UV_FILES",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_ALLOW_PICKLE_DESERIALIZATION",
)


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """None of NAMES set, and each put back as it was after the test."""
    for name in NAMES:
        monkeypatch.setenv(name, "")  # recorded, so that teardown restores it
        monkeypatch.delenv(name)


def _mlflow_env() -> dict[str, str]:
    return {name: os.environ[name] for name in NAMES if name in os.environ}


@pytest.mark.usefixtures("unset")
def test_an_inference_worker_tries_once_briefly_and_never_unpickles() -> None:
    configure_mlflow()

    assert _mlflow_env() == {
        "MLFLOW_LOG_UV_FILES": "false",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "3",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
    }


@pytest.mark.usefixtures("unset")
def test_a_train_worker_is_patient_but_what_the_user_set_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
    configure_mlflow()  # a Registry made first changes nothing below
    configure_mlflow(training=True)

    env = _mlflow_env()
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert env["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"  # not the user's to relax


def test_importing_the_registry_sets_nothing_making_one_does() -> None:
    probe = (
        "import json, os, sys\n"
        "from irisq.settings import Settings\n"
        "import worker.registry\n"
        "imported = {n: os.environ.get(n) for n in sys.argv[1:]}\n"
        # Making one reaches no server: nothing listens on port 9.
        "worker.registry.Registry(Settings(mlflow_tracking_uri='http://127.0.0.1:9'))\n"
        "made = {n: os.environ.get(n) for n in sys.argv[1:]}\n"
        "print(json.dumps([imported, made]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in NAMES}
    output = subprocess.check_output([sys.executable, "-c", probe, *NAMES], env=env, timeout=120)
    imported, made = json.loads(output)

    assert set(imported.values()) == {None}
    assert made["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    assert made["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
