"""A real MLflow store on SQLite under a temporary folder, and a fitted model, for the
worker's plain functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from irisq.settings import Settings
from worker.estimators import build_pipeline
from worker.training import iris_split


@pytest.fixture(scope="module")
def sqlite_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings on an empty SQLite MLflow store; artifacts land beside it (run from there)."""
    folder = tmp_path_factory.mktemp("mlflow-sqlite")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # a SQLite store keeps artifacts under ./mlruns
        yield Settings(
            mlflow_tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
            models_dir=folder / "models",
            experiment_name=f"test-{folder.name}",
        )


def exported(settings: Settings) -> list[Path]:
    return sorted(settings.models_dir.glob("model_*.joblib"))


@pytest.fixture(scope="module")
def model() -> Any:
    """The default pipeline fitted on the training split, no MLflow involved."""
    x_train, _, y_train, _ = iris_split()
    return build_pipeline("logistic_regression", {"C": 1.0, "max_iter": 1000}, 42).fit(
        x_train, y_train
    )
