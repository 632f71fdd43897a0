"""Training through the real stack: tracked, registered, gated, exported, hot-swapped."""

from __future__ import annotations

import re

import httpx

from devstack.processes import wait_for
from tests.support.stack import SETOSA, Stack


def test_a_weak_model_is_registered_but_the_champion_stays(stack: Stack) -> None:
    champion_before = stack.api.get("/v1/models").json()["champion"]

    job = stack.train("decision_tree", {"max_depth": 1})

    assert job["status"] == "succeeded", job
    assert job["kind"] == "training"
    result = job["result"]
    assert result["promoted"] is False
    assert "below the champion's" in result["reason"]
    assert result["previous_champion"]["version"] == champion_before
    assert result["metrics"]["accuracy"] < result["previous_champion"]["accuracy"]
    assert result["training"] == {
        "algorithm": "decision_tree",
        "params": {"max_depth": 1, "min_samples_leaf": 1, "criterion": "gini"},
    }
    models = stack.api.get("/v1/models").json()
    assert models["champion"] == champion_before
    listed = {v["version"]: v for v in models["versions"]}
    assert listed[result["model_version"]]["training"] == result["training"]
    assert listed[result["model_version"]]["is_champion"] is False


def test_training_result_names_run_metrics_and_export(stack: Stack) -> None:
    job = stack.train("knn", {"n_neighbors": 7})

    result = job["result"]
    metrics = result["metrics"]
    for name in ("accuracy", "f1_macro", "precision_setosa", "recall_virginica"):
        assert 0 <= metrics[name] <= 1
    matrix = result["confusion_matrix"]
    assert matrix["labels"] == ["setosa", "versicolor", "virginica"]
    assert sum(map(sum, matrix["matrix"])) == 45  # the 30 % test split of 150 flowers
    assert re.fullmatch(
        r"model_\d{4}_\d{2}_\d{2}_T\d{2}_\d{2}_\d{2}(_1)*\.joblib", result["export"]
    )
    assert (stack.settings.models_dir / result["export"]).is_file()
    run = httpx.get(
        f"{stack.settings.mlflow_tracking_uri}/api/2.0/mlflow/runs/get",
        params={"run_id": result["run_id"]},
    ).json()["run"]
    logged = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert logged["accuracy"] == metrics["accuracy"]
    assert result["run_url"].endswith(f"/runs/{result['run_id']}")


def test_training_reports_its_stages(stack: Stack) -> None:
    response = stack.api.post("/v1/training", json={"algorithm": "logistic_regression"})
    job_id = response.json()["job_id"]
    seen: set[str] = set()

    def finished() -> bool:
        job = stack.api.get(f"/v1/jobs/{job_id}").json()
        if job["stage"]:
            seen.add(job["stage"])
        return bool(job["status"] == "succeeded")

    wait_for(finished, 120, "training finished", every=0.02)
    assert "done" in seen
    assert seen & {"training", "evaluating", "logging", "registering", "promoting", "exporting"}


def test_predictions_follow_the_champion_when_it_moves(stack: Stack) -> None:
    before = stack.predict([SETOSA])["result"]["model_version"]
    models = stack.api.get("/v1/models").json()
    champion = next(v for v in models["versions"] if v["is_champion"])

    # Training is seeded, so the champion's own recipe scores exactly as well and the gate
    # ("at least as good") promotes it; the predict worker must notice without a restart.
    trained = stack.train(champion["training"]["algorithm"], champion["training"]["params"])
    assert trained["result"]["promoted"] is True, trained["result"]["reason"]
    new = trained["result"]["model_version"]
    assert new != before

    stack.serving(new)
    assert stack.api.get("/v1/models").json()["champion"] == new
    assert stack.predict_worker.poll() is None  # same worker process: swapped, not restarted
