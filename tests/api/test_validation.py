"""Bad input is a 422 problem naming the field, never a 500 and never a queued job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from irisq.jobs import KEY_PREFIX
from irisq.settings import Settings
from tests.support.stack import SETOSA


@pytest.fixture
def api(redis_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(redis_url=redis_url))) as client:
        yield client


def _row(**changes: Any) -> dict[str, Any]:
    return {**SETOSA, **changes}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"rows": [_row(sepal_length="5.1")]}, "rows[0].sepal_length", "valid number"),
        ({"rows": [_row(petal_width=-0.2)]}, "rows[0].petal_width", "greater than 0"),
        ({"rows": [_row(petal_width=0)]}, "rows[0].petal_width", "greater than 0"),
        ({"rows": [_row(sepal_width=150)]}, "rows[0].sepal_width", "less than or equal to 100"),
        ({"rows": [_row(petal_length=None)]}, "rows[0].petal_length", "valid number"),
        ({"rows": [_row(petal_length=True)]}, "rows[0].petal_length", "valid number"),
        ({"rows": [SETOSA, _row(colour="blue")]}, "rows[1].colour", "Extra inputs"),
        (
            {"rows": [{k: v for k, v in SETOSA.items() if k != "sepal_width"}]},
            "rows[0].sepal_width",
            "Field required",
        ),
        ({"rows": []}, "rows", "at least 1 item"),
        ({"rows": [SETOSA] * 10_001}, "rows", "at most 10000 items"),
        ({}, "rows", "Field required"),
        ({"rows": [SETOSA], "model": "latest"}, "model", 'must be "champion"'),
        ({"rows": [SETOSA], "model": 0}, "model", 'must be "champion"'),
        ({"rows": [SETOSA], "extra": 1}, "extra", "Extra inputs"),
        ({"rows": SETOSA}, "rows", "valid array"),
    ],
)
def test_bad_predictions_are_422_naming_the_field(
    api: TestClient, redis_client: redis.Redis, body: dict[str, Any], field: str, words: str
) -> None:
    jobs_before = len(list(redis_client.scan_iter(f"{KEY_PREFIX}*")))

    response = api.post("/v1/predictions", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]]
    assert words in problem["detail"]
    assert len(list(redis_client.scan_iter(f"{KEY_PREFIX}*"))) == jobs_before


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_refused(api: TestClient, literal: str) -> None:
    body = (
        '{"rows": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, '
        f'"petal_width": {literal}}}]}}'
    )

    response = api.post(
        "/v1/predictions", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "rows[0].petal_width"
    assert "finite number" in response.json()["detail"]


def test_a_body_that_is_not_json_is_422(api: TestClient) -> None:
    response = api.post(
        "/v1/predictions", content=b"{rows:", headers={"content-type": "application/json"}
    )

    assert response.status_code == 422
    assert "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"algorithm": "xgboost"}, "algorithm: Input tag 'xgboost' found using 'algorithm'"),
        ({"algorithm": "svc", "params": {"C": -1}}, "params.C: Input should be greater than 0"),
        ({"algorithm": "knn", "params": {"depth": 3}}, "params.depth: Extra inputs"),
        (
            {"algorithm": "random_forest", "params": {"n_estimators": "many"}},
            "params.n_estimators: Input should be a valid integer",
        ),
        ({"algorithm": "svc", "params": {"gamma": -1.0}}, "gamma must be"),
        ({"algorithm": "svc", "params": []}, "params: Input should be an object"),
    ],
)
def test_bad_training_requests_are_422_naming_the_parameter(
    api: TestClient, body: dict[str, Any], words: str
) -> None:
    response = api.post("/v1/training", json=body)

    assert response.status_code == 422
    assert words in response.json()["detail"]


def test_an_unknown_route_is_a_problem_404(api: TestClient) -> None:
    response = api.get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
