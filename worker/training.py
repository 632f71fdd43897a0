"""Training: fit on the Iris data, track in MLflow, register a version, gate the champion."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import mlflow
import mlflow.sklearn
import numpy as np
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from irisq.algorithms import resolve_params
from irisq.schema import FEATURES, SPECIES
from irisq.settings import Settings
from worker.estimators import build_pipeline
from worker.evaluation import evaluate, log_evaluation
from worker.registry import Registry  # imported first: it sets MLflow's environment

# One split for every run, so a candidate and the champion are judged on the same flowers.
SPLIT_SEED = 42
TEST_FRACTION = 0.3

# MLflow saves scikit-learn models with skops (no pickle) and refuses to load types it has
# not been told to trust. These are plain scikit-learn classes of our own pipelines (SVC's
# calibration wrappers, the trees' node storage); the registry only holds models this worker
# trained, which is what makes trusting the tree storage safe.
SKOPS_TRUSTED_TYPES = [
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._tree.Tree",
]

Report = Callable[[float, str], None]


def _no_report(progress: float, stage: str) -> None:
    del progress, stage


def iris_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stratified train/test split of the Iris data that scikit-learn ships."""
    data = load_iris()
    features = np.asarray(data.data, dtype=np.float64)
    labels = np.asarray(SPECIES)[data.target]  # species names, so classes_ are names too
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    return x_train, x_test, y_train, y_test


def export_path(models_dir: Path, when: datetime) -> Path:
    """`models/model_YYYY_MM_DD_THH_MM_SS.joblib`, the seed's naming."""
    return models_dir / f"model_{when:%Y_%m_%d_T%H_%M_%S}.joblib"


def _export(estimator: Any, models_dir: Path) -> Path:
    models_dir.mkdir(parents=True, exist_ok=True)
    path = export_path(models_dir, datetime.now(UTC))
    while path.exists():  # two trainings in one second: never overwrite an export
        path = path.with_name(path.stem + "_1" + path.suffix)
    joblib.dump(estimator, path)
    return path


def _gate(
    registry: Registry, accuracy: float, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[bool, str, dict[str, Any] | None]:
    """Promote when the candidate is at least as accurate as the champion on the same split."""
    current = registry.champion_version()
    if current is None:
        return True, "no champion was registered yet", None
    champion_accuracy = float(accuracy_score(y_test, registry.load(current).predict(x_test)))
    previous = {"version": current, "accuracy": champion_accuracy}
    if accuracy >= champion_accuracy:
        return (
            True,
            (
                f"test accuracy {accuracy:.4f} is at least the champion's "
                f"(version {current}: {champion_accuracy:.4f})"
            ),
            previous,
        )
    return (
        False,
        (
            f"test accuracy {accuracy:.4f} is below the champion's "
            f"(version {current}: {champion_accuracy:.4f}); the champion stays"
        ),
        previous,
    )


def train_and_register(
    algorithm: str,
    params: dict[str, Any],
    settings: Settings,
    job_id: str | None = None,
    report: Report = _no_report,
) -> dict[str, Any]:
    """Train, log and register a model; promote it through the quality gate. Returns the result."""
    params = resolve_params(algorithm, params)
    registry = Registry(settings)
    report(0.05, "loading_data")
    x_train, x_test, y_train, y_test = iris_split()

    report(0.15, "training")
    pipeline = build_pipeline(algorithm, params, seed=SPLIT_SEED)
    pipeline.fit(x_train, y_train)

    report(0.35, "evaluating")
    evaluation = evaluate(pipeline, x_test, y_test)

    report(0.5, "logging")
    experiment = mlflow.set_experiment(settings.experiment_name)
    with mlflow.start_run(run_name=f"{algorithm}-{job_id or 'cli'}") as run:
        mlflow.set_tags({"irisq.algorithm": algorithm, "irisq.job_id": job_id or "cli"})
        mlflow.log_params({"algorithm": algorithm, **params, "split_seed": SPLIT_SEED})
        log_evaluation(evaluation)
        report(0.65, "registering")
        # The pipeline is fitted on bare arrays (the hot path scores numpy); MLflow checks
        # the named input example against it and scikit-learn warns about the names.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="X has feature names", category=UserWarning)
            info = _log_model(pipeline, x_test, settings.model_name)
    version = str(info.registered_model_version)

    report(0.8, "promoting")
    promoted, reason, previous = _gate(registry, evaluation["metrics"]["accuracy"], x_test, y_test)

    report(0.9, "exporting")
    exported = _export(pipeline, settings.models_dir)
    registry.tag_version(
        version,
        {
            "irisq.algorithm": algorithm,
            "irisq.params": json.dumps(params, sort_keys=True),
            "irisq.job_id": job_id or "cli",
            "irisq.accuracy": f"{evaluation['metrics']['accuracy']:.6f}",
            "irisq.f1_macro": f"{evaluation['metrics']['f1_macro']:.6f}",
            "irisq.export": exported.name,
        },
    )
    if promoted:
        registry.promote(version)
    return {
        "run_id": run.info.run_id,
        "experiment_id": experiment.experiment_id,
        "model_version": version,
        "algorithm": algorithm,
        "params": params,
        "metrics": evaluation["metrics"],
        "confusion_matrix": evaluation["confusion_matrix"],
        "promoted": promoted,
        "reason": reason,
        "previous_champion": previous,
        "export": exported.name,
        "run_url": f"{settings.mlflow_ui_url}/#/experiments/{experiment.experiment_id}"
        f"/runs/{run.info.run_id}",
    }


def _log_model(pipeline: Any, x_test: np.ndarray, registered_name: str) -> Any:
    """Log the pipeline with its signature and an input example, and register a version."""
    return mlflow.sklearn.log_model(
        pipeline,
        name="model",
        signature=mlflow.models.infer_signature(
            _frame(x_test[:5]), pipeline.predict_proba(x_test[:5])
        ),
        input_example=_frame(x_test[:1]),
        registered_model_name=registered_name,
        # Naming the requirements skips MLflow's import-capturing subprocess (seconds).
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
    )


def _frame(rows: np.ndarray) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(FEATURES))
