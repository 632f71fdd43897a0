"""Training: fit on the Iris data, track in MLflow, register a version, gate the champion.

The stages run in this order, each checking for a cancel, and read best as one story
(algorithms and their parameters live in irisq, what MLflow keeps of a run in
worker.lineage).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import mlflow
import numpy as np
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from irisq.algorithms import resolve_params, training_from
from irisq.job_types import ConfusionMatrix, PreviousChampion, TrainingResult
from irisq.schema import SPECIES
from irisq.settings import Settings
from worker import lineage
from worker.estimators import build_pipeline
from worker.evaluation import evaluate, log_evaluation
from worker.jobs import JobCanceledError
from worker.registry import Registry, registry_errors
from worker.trust import SIGNATURE_TAG, UntrustedModelError

# One split for every run, so a candidate and the champion are judged on the same flowers.
SPLIT_SEED = 42
TEST_FRACTION = 0.3

CHALLENGER_REASON = (
    "registered as the challenger: scored in the shadow of the champion on live traffic, "
    "not offered to the quality gate"
)

Report = Callable[[float, str], None]
# Held while a version is registered and while the champion gate runs: another training (a
# second worker, or a re-delivery of this job) waits instead of racing (one Redis lock).
RegistryLock = Callable[[], AbstractContextManager[object]]


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
    try:
        champion = registry.load(current)
    except UntrustedModelError as exc:  # e.g. registered by hand: no model of ours to beat
        return True, f"the champion could not be trusted ({exc})", None
    champion_accuracy = float(accuracy_score(y_test, champion.predict(x_test)))
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
    registry_lock: RegistryLock = nullcontext,
    as_challenger: bool = False,
) -> TrainingResult:
    """Train, log and register a model; promote it through the quality gate, or make it the
    challenger (`as_challenger`: shadow-scored on live traffic, never gated). Returns the result.

    Idempotent per job: a job delivered twice (its worker died, or stalled past the
    visibility timeout) registers one version. The version is tagged with the job id when
    it is created, and each delivery looks for that tag first, under the registry lock.
    """
    with registry_errors(settings.mlflow_tracking_uri, "training (MLflow tracks every run)"):
        return _train_and_register(
            algorithm, params, settings, job_id, report, registry_lock, as_challenger
        )


def _train_and_register(
    algorithm: str,
    params: dict[str, Any],
    settings: Settings,
    job_id: str | None,
    report: Report,
    registry_lock: RegistryLock,
    as_challenger: bool,
) -> TrainingResult:
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
        lineage.log_data(x_train, y_train, x_test, y_test)
        info = lineage.log_model(pipeline, x_test)

    with _marked_if_canceled(run.info.run_id):
        report(0.65, "registering")
        accuracy = evaluation["metrics"]["accuracy"]
        signature = lineage.sign_stored_model(
            registry, run.info.run_id, info.model_uri, pipeline, x_test
        )
        with registry_lock():
            version = registry.version_of_job(job_id) if job_id else None
            if version is None:
                registered = mlflow.register_model(
                    info.model_uri,
                    settings.model_name,
                    tags={"irisq.job_id": job_id or "cli", SIGNATURE_TAG: signature},
                )
                version = str(registered.version)
            report(0.8, "promoting")
            if as_challenger:
                promoted, reason, previous = False, CHALLENGER_REASON, None
            else:
                promoted, reason, previous = _gate(registry, accuracy, x_test, y_test)
            if promoted and previous is not None and previous["version"] == version:
                reason = f"version {version} is already the champion (this job ran before)"
            report(0.9, "exporting")
            # An earlier delivery may have exported and tagged this version already.
            export = registry.version_tags(version).get("irisq.export")
            if export is None:
                export = _export(pipeline, settings.models_dir).name
                registry.tag_version(
                    version,
                    {
                        "irisq.algorithm": algorithm,
                        "irisq.params": json.dumps(params, sort_keys=True),
                        "irisq.accuracy": f"{accuracy:.6f}",
                        "irisq.f1_macro": f"{evaluation['metrics']['f1_macro']:.6f}",
                        "irisq.export": export,
                    },
                )
            registry.describe_version(
                version, lineage.decision(promoted, reason, algorithm, accuracy)
            )
            registry.tag_version(
                version, {"irisq.gate.promoted": str(promoted).lower(), "irisq.gate.reason": reason}
            )
            if promoted:
                registry.promote(version)
            elif as_challenger:
                registry.make_challenger(version)
        return TrainingResult(
            run_id=run.info.run_id,
            experiment_id=experiment.experiment_id,
            model_version=version,
            training=training_from(algorithm, params),
            metrics=evaluation["metrics"],
            confusion_matrix=ConfusionMatrix.model_validate(evaluation["confusion_matrix"]),
            promoted=promoted,
            as_challenger=as_challenger,
            reason=reason,
            previous_champion=None
            if previous is None
            else PreviousChampion.model_validate(previous),
            export=export,
            run_url=f"{settings.mlflow_ui_url}/#/experiments/{experiment.experiment_id}"
            f"/runs/{run.info.run_id}",
        )


@contextmanager
def _marked_if_canceled(run_id: str) -> Iterator[None]:
    """A training canceled once its run is logged leaves the run marked so in MLflow
    (status KILLED, tag `irisq.canceled`), not looking like a finished training."""
    try:
        yield
    except JobCanceledError:
        client = mlflow.MlflowClient()
        client.set_tag(run_id, "irisq.canceled", "true")
        client.set_terminated(run_id, status="KILLED")
        raise
