"""The real stack for the tests: private Redis, MLflow server, Celery workers, the API.

Everything here is started for real and stopped at the end; nothing is faked.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from devstack.object_storage import S3Endpoint, s3_server
from devstack.processes import (
    celery_worker,
    machine_slowdown,
    mlflow_server,
    redis_server,
    tail,
    wait_for,
)
from irisq.settings import Settings
from irisq.webhooks import new_secret
from tests.support.stack import Stack
from tests.support.storage import aws_credentials

# API and workers share the secret that signs job ids and models: one for the whole run, in
# the environment, so every process the tests start (and every Settings()) has it.
os.environ.setdefault("IRISQ_SECRET_KEY", secrets.token_urlsafe(32))
# Likewise the secret that signs callbacks (without one, a callback_url is refused).
os.environ.setdefault("IRISQ_WEBHOOK_SECRET", new_secret())


def pytest_report_header(config: pytest.Config) -> str:
    return f"machine slowdown: {machine_slowdown():.1f}x a quiet one (every wait stretched by it)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test's hard time limit (pytest-timeout's `--timeout`, in pyproject.toml)
    stretched as every wait is (devstack.processes.machine_slowdown): a busy machine takes
    longer, and the run says by how much."""
    base = config.getoption("timeout", None)
    slowdown = machine_slowdown()
    if not base or slowdown <= 1.05:
        return
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(float(base) * slowdown))


# A worker re-reads the champion alias this often in the tests, so hot swaps show quickly.
CHAMPION_REFRESH_SECONDS = "0.5"


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def redis_url(var_dir: Path) -> Iterator[str]:
    with redis_server(var_dir / "redis") as url:
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def mlflow_url(var_dir: Path) -> Iterator[str]:
    with mlflow_server(var_dir / "mlflow") as url:
        yield url


@pytest.fixture(scope="session")
def stack_settings(redis_url: str, mlflow_url: str, var_dir: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        mlflow_tracking_uri=mlflow_url,
        mlflow_ui_url=mlflow_url,
        models_dir=var_dir / "models",
        batch_dir=var_dir / "batches",
        prediction_log_dir=var_dir / "prediction-log",
    )


@pytest.fixture(scope="session")
def stack_env(stack_settings: Settings) -> dict[str, str]:
    """What the stack's worker processes run with."""
    return {
        "IRISQ_REDIS_URL": stack_settings.redis_url,
        "IRISQ_MLFLOW_TRACKING_URI": stack_settings.mlflow_tracking_uri,
        "IRISQ_MLFLOW_UI_URL": stack_settings.mlflow_ui_url,
        "IRISQ_MODELS_DIR": str(stack_settings.models_dir),
        "IRISQ_BATCH_DIR": str(stack_settings.batch_dir),
        "IRISQ_PREDICTION_LOG_DIR": str(stack_settings.prediction_log_dir),
        "IRISQ_CHAMPION_REFRESH_SECONDS": CHAMPION_REFRESH_SECONDS,
    }


@pytest.fixture(scope="session")
def stack_logs(var_dir: Path) -> Path:
    logs = var_dir / "logs"
    logs.mkdir(exist_ok=True)
    return logs


@pytest.fixture(scope="session")
def stack(stack_settings: Settings, stack_env: dict[str, str], stack_logs: Path) -> Iterator[Stack]:
    """API + predict worker + train worker on the private Redis and MLflow server.

    The registry starts empty: the train worker must bootstrap the first champion by
    itself, exactly as on a fresh `make run`; the fixture waits for /readyz to say so.
    """
    env, logs = stack_env, stack_logs
    with (
        celery_worker("predict", "predict", env, logs / "predict.log") as predict_worker,
        celery_worker("train", "train", env, logs / "train.log") as train_worker,
        TestClient(create_app(stack_settings)) as client,
    ):
        try:
            wait_for(
                lambda: client.get("/readyz").json()["ready"],
                180,
                "the stack ready (workers up, first champion bootstrapped)",
                every=0.5,
            )
        except TimeoutError as exc:
            raise RuntimeError(
                f"{exc}\nreadyz: {client.get('/readyz').json()}\n"
                f"--- train worker ---\n{tail(logs / 'train.log')}\n"
                f"--- predict worker ---\n{tail(logs / 'predict.log')}"
            ) from None
        yield Stack(client, stack_settings, logs, predict_worker, train_worker, env)


@pytest.fixture(scope="session")
def s3_endpoint(var_dir: Path) -> Iterator[S3Endpoint]:
    """A real S3-compatible server (SeaweedFS) on free ports, for the whole run."""
    with s3_server(var_dir / "s3") as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3_stack(
    stack_settings: Settings,
    stack_env: dict[str, str],
    stack_logs: Path,
    s3_endpoint: S3Endpoint,
    var_dir: Path,
) -> Iterator[Stack]:
    """The stack again with its batches in object storage: its own Redis database, API and
    predict worker, and no batch folder at all (IRISQ_BATCH_DIR names one never made). The
    registry and its champion are the main stack's: request `stack` first (its train worker
    bootstraps the champion). Not itself a `stack` dependency, so that a module may
    override `stack` with a choice between the two."""
    storage = s3_endpoint.env("irisq-tests")
    redis_db = stack_settings.redis_url.rsplit("/", 1)[0] + "/1"
    no_folder = var_dir / "s3-stack-has-no-batch-folder"
    env = {
        **stack_env,
        **storage,
        "IRISQ_REDIS_URL": redis_db,
        "IRISQ_BATCH_DIR": str(no_folder),
        "IRISQ_MODELS_DIR": str(var_dir / "models-s3"),
    }
    settings = stack_settings.model_copy(
        update={
            "redis_url": redis_db,
            "batch_dir": no_folder,
            "batch_storage_url": storage["IRISQ_BATCH_STORAGE_URL"],
            "s3_endpoint_url": s3_endpoint.url,
        }
    )
    with (
        aws_credentials(s3_endpoint),
        celery_worker("predict", "predict-s3", env, stack_logs / "predict-s3.log") as worker,
        TestClient(create_app(settings)) as client,
    ):
        try:
            wait_for(lambda: client.get("/readyz").json()["ready"], 120, "the S3 stack ready")
        except TimeoutError as exc:
            raise RuntimeError(
                f"{exc}\nreadyz: {client.get('/readyz').json()}\n"
                f"{tail(stack_logs / 'predict-s3.log')}"
            ) from None
        yield Stack(client, settings, stack_logs, worker, None, env)
    assert not no_folder.exists()  # nothing of a batch went to a local folder
