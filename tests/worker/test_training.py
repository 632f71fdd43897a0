"""Training on a real MLflow SQLite store: tracking, registration, the gate, the export."""

from __future__ import annotations

import json

import joblib
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from irisq.schema import FEATURES
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


def test_a_version_is_traceable_to_its_data_and_the_gates_decision(
    sqlite_settings: Settings,
) -> None:
    """What an MLflow user looks for: what the model returns, an example of what it takes,
    the data it was fitted on, and why it is (or is not) the champion."""
    result = train_and_register("svc", {"C": 0.01}, sqlite_settings, job_id="job-lineage")
    client = MlflowClient(sqlite_settings.mlflow_tracking_uri)
    mlflow.set_tracking_uri(sqlite_settings.mlflow_tracking_uri)

    info = mlflow.models.get_model_info(
        f"models:/{sqlite_settings.model_name}/{result.model_version}"
    )
    assert info.signature.outputs.to_dict() == [
        {"type": "string", "name": "species", "required": True}
    ]
    assert [c["name"] for c in info.signature.inputs.to_dict()] == list(FEATURES)
    assert info.saved_input_example_info is not None
    inputs = client.get_run(result.run_id).inputs
    assert inputs is not None
    contexts = {
        next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
        for i in inputs.dataset_inputs
    }
    assert set(contexts) == {"training", "evaluation"}
    assert contexts["training"].name == "iris-training"
    assert contexts["training"].digest != contexts["evaluation"].digest
    assert json.loads(str(contexts["training"].profile))["num_rows"] == 105  # 70 % of 150 flowers
    version = client.get_model_version(sqlite_settings.model_name, result.model_version)
    verdict = "Promoted to champion by the quality gate" if result.promoted else "Not promoted"
    accuracy = result.metrics["accuracy"]
    assert version.description == f"{verdict}: {result.reason}. svc, test accuracy {accuracy:.4f}."
    assert version.tags["irisq.gate.promoted"] == str(result.promoted).lower()
    assert version.tags["irisq.gate.reason"] == result.reason


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
