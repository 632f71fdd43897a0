"""Training on a real MLflow SQLite store: tracking, registration, the gate, the export."""

from __future__ import annotations

import json

import joblib
import pytest
from mlflow.tracking import MlflowClient

from irisq.settings import Settings
from tests.worker.conftest import exported
from worker.jobs import JobCanceledError
from worker.registry import Registry
from worker.training import iris_split, train_and_register


def test_the_first_model_becomes_champion_and_is_fully_tracked(sqlite_settings: Settings) -> None:
    stages: list[str] = []

    result = train_and_register(
        "logistic_regression",
        {},
        sqlite_settings,
        job_id="job-1",
        report=lambda _, stage: stages.append(stage),
    )

    assert result.promoted is True
    assert result.reason == "no champion was registered yet"
    assert Registry(sqlite_settings).champion_version() == result.model_version
    assert stages == [
        "loading_data",
        "training",
        "evaluating",
        "logging",
        "registering",
        "promoting",
        "exporting",
    ]
    client = MlflowClient(sqlite_settings.mlflow_tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.params["algorithm"] == "logistic_regression"
    assert run.data.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"confusion_matrix.png", "confusion_matrix.json"} <= artifacts
    version = client.get_model_version(sqlite_settings.model_name, result.model_version)
    assert version.tags["irisq.job_id"] == "job-1"
    assert json.loads(version.tags["irisq.params"]) == {"C": 1.0, "max_iter": 1000}


def test_the_export_is_the_same_model_under_the_seed_name(sqlite_settings: Settings) -> None:
    result = train_and_register("svc", {"kernel": "linear"}, sqlite_settings)

    path = sqlite_settings.models_dir / result.export
    assert path in exported(sqlite_settings)
    _, x_test, _, _ = iris_split()
    registered = Registry(sqlite_settings).load(result.model_version)
    assert (joblib.load(path).predict_proba(x_test) == registered.predict_proba(x_test)).all()


def test_a_worse_model_is_registered_but_not_promoted(sqlite_settings: Settings) -> None:
    registry = Registry(sqlite_settings)
    champion = registry.champion_version()

    result = train_and_register("decision_tree", {"max_depth": 1}, sqlite_settings)

    assert result.promoted is False
    assert f"below the champion's (version {champion}" in result.reason
    assert registry.champion_version() == champion
    assert result.model_version != champion


@pytest.mark.parametrize("algorithm", ["random_forest", "knn"])
def test_every_algorithm_trains_and_registers(sqlite_settings: Settings, algorithm: str) -> None:
    result = train_and_register(algorithm, {}, sqlite_settings)

    assert result.metrics["accuracy"] > 0.85
    loaded = Registry(sqlite_settings).load(result.model_version)
    assert list(loaded.classes_) == ["setosa", "versicolor", "virginica"]


def test_a_training_canceled_after_its_run_leaves_the_run_marked_killed(
    sqlite_settings: Settings,
) -> None:
    """Canceled while registering: no version, and the run does not pass for a finished one."""

    def cancel_when_registering(_: float, stage: str) -> None:
        if stage == "registering":
            raise JobCanceledError("job-canceled")

    before = {v.version for v in MlflowClient().search_model_versions()}
    with pytest.raises(JobCanceledError):
        train_and_register(
            "knn", {}, sqlite_settings, job_id="job-canceled", report=cancel_when_registering
        )

    runs = MlflowClient().search_runs(
        [e.experiment_id for e in MlflowClient().search_experiments()],
        "tags.`irisq.job_id` = 'job-canceled'",
    )
    assert [(r.info.status, r.data.tags.get("irisq.canceled")) for r in runs] == [
        ("KILLED", "true")
    ]
    assert {v.version for v in MlflowClient().search_model_versions()} == before
