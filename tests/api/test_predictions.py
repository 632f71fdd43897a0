"""Predictions through the real stack: API → Redis → Celery worker → MLflow champion."""

from __future__ import annotations

from tests.support.stack import SETOSA, VERSICOLOR, VIRGINICA, Stack


def test_a_setosa_row_is_accepted_then_predicted_setosa(stack: Stack) -> None:
    response = stack.api.post("/v1/predictions", json={"rows": [SETOSA]})

    assert response.status_code == 202
    accepted = response.json()
    assert accepted["status"] == "queued"
    assert accepted["kind"] == "prediction"
    assert response.headers["location"] == f"/v1/jobs/{accepted['job_id']}"

    job = stack.wait(accepted["job_id"])
    assert job["status"] == "succeeded", job
    assert job["progress"] == 1.0
    assert job["started_at"] is not None
    assert job["finished_at"] >= job["started_at"] >= job["created_at"]
    result = job["result"]
    champion = stack.api.get("/v1/models").json()["champion"]
    assert result["model_version"] == champion
    [prediction] = result["predictions"]
    assert prediction["species"] == "setosa"
    assert set(prediction["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert abs(sum(prediction["probabilities"].values()) - 1) < 1e-4
    assert prediction["probabilities"]["setosa"] == max(prediction["probabilities"].values())


def test_rows_come_back_in_the_order_they_were_sent(stack: Stack) -> None:
    rows = [VIRGINICA, SETOSA, VERSICOLOR, SETOSA]

    job = stack.predict(rows)

    species = [p["species"] for p in job["result"]["predictions"]]
    assert species == ["virginica", "setosa", "versicolor", "setosa"]


def test_ten_thousand_rows_are_scored_in_one_job(stack: Stack) -> None:
    rows = [SETOSA, VERSICOLOR, VIRGINICA] * 3333 + [SETOSA]

    job = stack.predict(rows)

    predictions = job["result"]["predictions"]
    assert len(predictions) == 10_000
    assert [p["species"] for p in predictions[:3]] == ["setosa", "versicolor", "virginica"]


def test_a_pinned_version_scores_the_job(stack: Stack) -> None:
    job = stack.predict([SETOSA], model="1")

    assert job["status"] == "succeeded", job
    assert job["result"]["model_version"] == "1"


def test_an_unregistered_version_fails_the_job_with_a_clear_reason(stack: Stack) -> None:
    job = stack.predict([SETOSA], model=999)

    assert job["status"] == "failed"
    assert job["error"]["type"] == "model_not_found"
    assert "no version 999" in job["error"]["message"]
    assert job["result"] is None


def test_an_unknown_job_id_is_404(stack: Stack) -> None:
    response = stack.api.get("/v1/jobs/00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "no job with id" in response.json()["detail"]
