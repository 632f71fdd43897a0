"""A typed Python client generated from the live `/openapi.json` with openapi-python-client,
as a team consuming irisq would make one: it must generate, import without a warning, and
predict, score a batch and train, reading each kind of result as its own typed model.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from devstack.processes import BIN, api_server, wait_for
from tests.support.stack import SETOSA, Stack

PACKAGE = "irisq_client"
# The generator writes Python for JSON, multipart and form bodies; the CSV body that
# /invocations also takes (text/csv) it leaves out, with this warning, and nothing else.
KNOWN_WARNINGS = (
    "Unsupported content type text/csv",
    "WARNING parsing POST /invocations within",
    "WARNING parsing POST /endpoints/{endpoint}/invocations within",
)


@pytest.fixture(scope="module")
def api_url(stack: Stack) -> Iterator[str]:
    with api_server(stack.env, stack.logs / "api-generated-client.log") as url:
        yield url


@pytest.fixture(scope="module")
def generated(api_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The client, generated into a temporary folder that is put on `sys.path`."""
    folder = tmp_path_factory.mktemp("generated")
    schema = folder / "openapi.json"
    schema.write_bytes(httpx.get(f"{api_url}/openapi.json", timeout=30).content)
    done = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(schema),
            "--meta",
            "none",
            "--output-path",
            str(folder / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": f"{BIN}:/usr/bin:/bin"},  # its formatter (ruff) comes from the venv
        cwd=folder,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    unexpected = [
        line
        for line in output.splitlines()
        if ("WARNING" in line or "Unable" in line or "Invalid" in line or "Unsupported" in line)
        and not any(known in line for known in KNOWN_WARNINGS)
    ]
    assert unexpected == [], output
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _import(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture(scope="module")
def client(generated: Path, api_url: str) -> Iterator[Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning while importing fails the test
        package = importlib.import_module(PACKAGE)
        for module in ("models", "api.predictions", "api.batches", "api.training", "api.jobs"):
            _import(module)
        for path in (generated / PACKAGE / "api").rglob("*.py"):
            module = ".".join(path.relative_to(generated / PACKAGE).with_suffix("").parts)
            _import(module.removesuffix(".__init__"))
    # Open here (no keys): any token is accepted; a keyed deployment takes its key.
    with package.AuthenticatedClient(base_url=api_url, token="unused", timeout=30.0) as client:
        yield client


def _finished(client: Any, job_id: str, deadline: float = 120) -> Any:
    get_job = _import("api.jobs.get_job")
    final = {"succeeded", "failed", "canceled"}

    def ended() -> Any:
        job = get_job.sync(job_id, client=client)
        return job if job.status.value in final else None

    return wait_for(ended, deadline, f"job {job_id} finished")


def _accepted(call: Callable[..., Any], **kwargs: Any) -> str:
    response = call(**kwargs)
    assert response.status_code == 202, response.content
    return str(response.parsed.job_id)


def test_the_client_predicts_and_reads_a_typed_prediction(client: Any) -> None:
    models = _import("models")
    create_prediction = _import("api.predictions.create_prediction")
    body = models.PredictionRequest(rows=[models.FeatureRow(**SETOSA)])

    job = _finished(client, _accepted(create_prediction.sync_detailed, client=client, body=body))

    assert job.status.value == "succeeded"
    result = job.result
    assert isinstance(result, models.PredictionResult)
    assert result.predictions[0].species.value == "setosa"
    assert result.predictions[0].probabilities.setosa > 0.5
    assert result.model_version.isdigit()


def test_the_client_scores_a_batch_and_reads_a_typed_summary(client: Any) -> None:
    models = _import("models")
    types = _import("types")
    create_batch = _import("api.batches.create_batch")
    csv = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"
    upload = types.File(payload=BytesIO(csv), file_name="flowers.csv", mime_type="text/csv")

    job_id = _accepted(
        create_batch.sync_detailed, client=client, body=models.CreateBatchBody(file=upload)
    )
    job = _finished(client, job_id)

    assert job.status.value == "succeeded"
    summary = job.result
    assert isinstance(summary, models.BatchResult)
    assert (summary.rows_scored, summary.counts.setosa, summary.counts.virginica) == (2, 1, 1)
    assert summary.columns.petal_width == "petal_width"


def test_the_client_trains_and_reads_the_typed_training(client: Any) -> None:
    models = _import("models")
    create_training = _import("api.training.create_training")
    body = models.DecisionTreeTraining(
        algorithm="decision_tree", params=models.DecisionTreeParams(max_depth=2)
    )

    job = _finished(client, _accepted(create_training.sync_detailed, client=client, body=body), 300)

    assert job.status.value == "succeeded", job.error
    result = job.result
    assert isinstance(result, models.TrainingResult)
    assert isinstance(result.training, models.DecisionTreeTraining)  # told apart by algorithm
    assert result.training.params.max_depth == 2
    assert result.training.params.criterion.value == "gini"  # the default, filled in
    assert 0 < result.metrics["accuracy"] <= 1
    assert [label.value for label in result.confusion_matrix.labels] == [
        "setosa",
        "versicolor",
        "virginica",
    ]
