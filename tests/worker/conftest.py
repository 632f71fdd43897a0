"""A real MLflow store on SQLite under a temporary folder, for the worker's plain functions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from irisq.settings import Settings


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
