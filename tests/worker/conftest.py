"""A real MLflow store on SQLite under a temporary folder, and a fitted model, for the
worker's plain functions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from irisq.settings import Settings
from worker.estimators import build_pipeline
from worker.training import iris_split


@pytest.fixture(scope="module")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings on an empty SQLite MLflow store; artifacts land beside it (run from there)."""
    folder = tmp_path_factory.mktemp("mlflow-sqlite")
    with pytest.MonkeyPatch.context() as patch:
        yield sqlite_store(folder, patch)


def sqlite_store(folder: Path, patch: pytest.MonkeyPatch, name: str = "mlflow") -> Settings:
    """Settings on an empty SQLite MLflow store in `folder`, made the working directory: a
    SQLite store keeps artifacts under ./mlruns. A test that needs a store of its own (one
    no other test has registered versions in) makes it with this."""
    patch.chdir(folder)
    return Settings(
        mlflow_tracking_uri=f"sqlite:///{folder / f'{name}.db'}",
        models_dir=folder / "models",
        experiment_name=f"test-{folder.name}-{name}",
    )


@contextmanager
def redis_database(redis_url: str, number: int) -> Iterator[redis.Redis]:
    """Database `number` of the session's Redis, for figures a test counts from zero: empty
    before and after."""
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{number}")
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def exported(settings: Settings) -> list[Path]:
    return sorted(settings.models_dir.glob("model_*.joblib"))


@pytest.fixture(scope="module")
def model() -> Any:
    """The default pipeline fitted on the training split, no MLflow involved."""
    x_train, _, y_train, _ = iris_split()
    return build_pipeline("logistic_regression", {"C": 1.0, "max_iter": 1000}, 42).fit(
        x_train, y_train
    )
