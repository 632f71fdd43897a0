"""`/invocations` driven by MLflow's own scoring-server client, as a real peer would."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlparse

import pandas as pd
import pytest
from mlflow.pyfunc.scoring_server.client import ScoringServerClient

from devstack.processes import api_server
from tests.support.stack import SETOSA, VERSICOLOR, VIRGINICA, Stack

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
        (b'{"instances": [[5.1, 3.5, 1.4]]}', "application/json", 400, "row 0"),
        (b'{"instances": [[5.1, 3.5, 1.4, -1]]}', "application/json", 422, "rows[0].petal_width"),
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
    assert stack.api.get("/ping").status_code == 200
    assert stack.api.get("/health").status_code == 200
    assert stack.api.get("/version").text.startswith("irisq ")
