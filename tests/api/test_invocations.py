"""`/invocations` driven by MLflow's own scoring-server client, as a real peer would."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import mlflow
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from packaging.version import Version

from api.main import create_app
from devstack.processes import api_server
from irisq.schema import MLFLOW_PROTOCOL_VERSION
from tests.support.stack import SETOSA, VERSICOLOR, VIRGINICA, Stack
from worker.registry import Registry

FLOWERS = [SETOSA, VERSICOLOR, VIRGINICA]


@pytest.fixture(scope="module")
def api_url(stack: Stack) -> Iterator[str]:
    """The API under uvicorn, on the test stack: MLflow's client speaks HTTP to a port."""
    with api_server(stack.env, stack.logs / "api-invocations.log") as url:
        yield url


def test_mlflows_scoring_client_gets_one_species_per_row(api_url: str) -> None:
    address = urlparse(api_url)
    client = ScoringServerClient(address.hostname, address.port)  # type: ignore[no-untyped-call]
    client.wait_server_ready(timeout=30)  # type: ignore[no-untyped-call]  # it polls /ping, as against `mlflow models serve`

    answer = client.invoke(pd.DataFrame(FLOWERS))

    predicted = answer.get_predictions()  # a DataFrame, as MLflow hands it to callers
    assert predicted.iloc[:, 0].tolist() == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": list(SETOSA), "data": [list(f.values()) for f in FLOWERS]}},
        {"dataframe_records": FLOWERS},
        {"instances": [list(f.values()) for f in FLOWERS]},
        {"inputs": {name: [f[name] for f in FLOWERS] for name in SETOSA}},
        {
            "inputs": [
                {
                    "Sepal.Length": f["sepal_length"],
                    "Sepal.Width": f["sepal_width"],
                    "Petal.Length": f["petal_length"],
                    "Petal.Width": f["petal_width"],
                }
                for f in FLOWERS
            ]
        },
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs-columns", "inputs-r-names"],
)
def test_every_json_format_of_the_protocol_is_read(stack: Stack, body: dict[str, object]) -> None:
    response = stack.api.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "versicolor", "virginica"]}


def test_csv_bodies_are_read(stack: Stack) -> None:
    csv = (
        "SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm\n5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n"
    )
    response = stack.api.post(
        "/invocations", content=csv.encode(), headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "virginica"]}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b'{"rows": []}', "application/json", 400, "expected exactly one of"),
        (b"{nope", "application/json", 400, "not valid JSON"),
        (b'{"instances": [[5.1, 3.5, 1.4]]}', "application/json", 400, "instances[0]: expected"),
        (
            b'{"instances": [[5.1, 3.5, 1.4, -1]]}',
            "application/json",
            422,
            "instances[0].petal_width: -1 is not a length greater than 0",
        ),
        (b"a,b\n1,2\n", "text/csv", 400, "missing required column"),
        (b"<x/>", "application/xml", 415, "unsupported content type"),
    ],
)
def test_bad_bodies_are_refused_naming_the_problem(
    stack: Stack, body: bytes, content_type: str, status: int, says: str
) -> None:
    response = stack.api.post("/invocations", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]


def test_ping_health_and_version(stack: Stack) -> None:
    assert stack.api.get("/ping").status_code == 200  # the stack can score: ready
    assert stack.api.get("/health").status_code == 200
    assert stack.api.get("/version").text == MLFLOW_PROTOCOL_VERSION


def test_version_is_a_version_mlflows_clients_can_parse(stack: Stack) -> None:
    answer = stack.api.get("/version").text
    assert Version(answer) == Version(mlflow.__version__)  # the workers' MLflow


def test_numbers_sent_as_strings_are_read_as_mlflow_coerces_them(stack: Stack) -> None:
    as_text = [[str(value) for value in flower.values()] for flower in FLOWERS]
    response = stack.api.post("/invocations", json={"instances": as_text})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "versicolor", "virginica"]}


def test_other_columns_are_ignored_as_mlflow_ignores_them(stack: Stack) -> None:
    records = [{"id": i, "note": "garden", **flower} for i, flower in enumerate(FLOWERS)]
    response = stack.api.post("/invocations", json={"dataframe_records": records})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize(
    "columns",
    [
        ["sepal_length", "sepal_width", "petal_length", "petal_width", "sepal_length"],
        ["sepal_length", "sepal_width", "petal_length", "petal_width", "Sepal.Length"],
    ],
    ids=["same-name", "two-spellings"],
)
def test_a_measurement_named_twice_is_refused_as_mlflow_does(
    stack: Stack, columns: list[str]
) -> None:
    body = {"dataframe_split": {"columns": columns, "data": [[5.1, 3.5, 1.4, 0.2, 6.0]]}}
    response = stack.api.post("/invocations", json=body)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert "both name sepal_length" in problem["detail"]
    # MLflow's clients read `error_code` and `message`; problem-details clients the rest.
    assert (problem["error_code"], problem["message"]) == ("BAD_REQUEST", problem["detail"])


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"instances": [["5.1", "3.5", "1.4", "1_0"]]}', "application/json"),
        ('{"instances": [["5.1", "3.5", "1.4", "\u0663"]]}'.encode(), "application/json"),
        (b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,1_0\n", "text/csv"),
        (
            "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,\u0663\n".encode(),
            "text/csv",
        ),
    ],
    ids=["json-underscore", "json-arabic-digit", "csv-underscore", "csv-arabic-digit"],
)
def test_numbers_follow_the_batch_files_rules(stack: Stack, body: bytes, content_type: str) -> None:
    """`float()` takes `1_0` and `٣`; batch uploads refuse them, and so does /invocations."""
    response = stack.api.post("/invocations", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert "not a number" in problem["detail"]
    assert "petal_width" in problem["detail"]
    assert problem["error_code"] == "INVALID_PARAMETER_VALUE"


def test_a_hundred_thousand_rows_score_as_in_process(stack: Stack) -> None:
    """MLflow has no row cap; nor does /invocations below what its body limit holds. The
    rows become ten jobs of 10,000, scored side by side, answered in order."""
    generator = np.random.default_rng(7)
    rows = np.round(generator.uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], (100_000, 4)), 1)
    body = {"dataframe_split": {"columns": list(SETOSA), "data": rows.tolist()}}

    response = stack.api.post("/invocations", json=body)

    assert response.status_code == 200, response.text
    version = stack.predict([SETOSA])["result"]["model_version"]
    estimator = Registry(stack.settings).load(version)
    in_process = estimator.predict(rows).tolist()
    assert response.json()["predictions"] == in_process


def test_more_rows_than_the_limit_are_413_before_any_is_scored(stack: Stack) -> None:
    settings = stack.settings.model_copy(update={"invocations_max_rows": 2})
    with TestClient(create_app(settings)) as small:
        response = small.post("/invocations", json={"instances": [list(SETOSA.values())] * 3})
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == "3 rows: at most 2 in one request"
    assert response.json()["error_code"] == "BAD_REQUEST"


def test_every_documented_example_validates_against_its_schema(stack: Stack) -> None:
    document = stack.api.get("/openapi.json").json()
    body = document["paths"]["/invocations"]["post"]["requestBody"]
    json_body = body["content"]["application/json"]
    # Its references point into the document's components: resolve them there.
    validator = Draft202012Validator({**json_body["schema"], "components": document["components"]})
    assert set(json_body["examples"]) == {
        "dataframe_split",
        "dataframe_records",
        "instances",
        "inputs",
    }
    for name, example in json_body["examples"].items():
        validator.validate(example["value"])  # the client may send it as it is...
        sent = stack.api.post("/invocations", json=example["value"])
        assert sent.status_code == 200, (name, sent.text)  # ...and it is scored
    csv = body["content"]["text/csv"]["example"]
    sent = stack.api.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert sent.status_code == 200, sent.text
