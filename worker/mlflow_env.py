"""MLflow's environment in a worker process, set before any call reaches MLflow.

MLflow reads these variables at each call, not at import, so setting them when a worker
starts (worker.celery_app) or when a Registry is made (train_cli, tests, benchmarks) is in
time. This module imports nothing heavy: the callbacks worker configures itself with it too.
"""

from __future__ import annotations

import os

# MLflow defaults that do not suit a worker (a value set in the environment still wins):
# - it would copy this project's uv.lock (every service's dependencies) into each model;
# - its HTTP client retries a down server for about two minutes, holding jobs that long: an
#   inference worker tries once, briefly; a train worker allows more (`training`).
_DEFAULTS = {"MLFLOW_LOG_UV_FILES": "false", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
_INFERENCE_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"}
# Training talks to MLflow for seconds anyway: a blip there should not fail a run.
_TRAINING_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def configure_mlflow(training: bool = False) -> None:
    """Set MLflow's worker defaults; `training`: for a train worker, whose registry calls are
    retried, with longer timeouts. Idempotent: a Registry calls it again, harmlessly."""
    for name, value in {**_DEFAULTS, **_INFERENCE_HTTP}.items():
        os.environ.setdefault(name, value)
    if training:  # over the inference defaults, not over what the user set
        for name, value in _TRAINING_HTTP.items():
            if os.environ[name] == _INFERENCE_HTTP[name]:
                os.environ[name] = value
    # Never a default the user may relax: MLflow's loaders unpickle whatever a model holds,
    # and irisq loads models with skops itself (worker.trust).
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
