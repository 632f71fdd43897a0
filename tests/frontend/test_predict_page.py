"""The Predict page's logic, with the API faked at the HTTP boundary (respx)."""

from __future__ import annotations

from typing import Any

import httpx
import respx
from streamlit.testing.v1 import AppTest

from irisq.job_types import PredictionResult, RowPrediction, SpeciesProbabilities
from tests.frontend.conftest import APP, ended, job, labels, sse, stream

JOB = "3f1c2a9e-0000-4000-8000-000000000001"


def _job(status: str, result: dict[str, Any] | None = None) -> dict[str, Any]:
    return job(JOB, "prediction", status, result=result)


RESULT = PredictionResult(
    model_version="4",
    model_source="registry",
    predictions=[
        RowPrediction(
            species="virginica",
            probabilities=SpeciesProbabilities(setosa=0.01, versicolor=0.09, virginica=0.9),
        )
    ],
).model_dump(mode="json")


def test_predict_submits_the_inputs_and_shows_the_species(api: respx.MockRouter) -> None:
    # Asked to wait, the API answers with the finished job: no following, no polling.
    submitted = api.post("/v1/predictions").respond(200, json=_job("succeeded", RESULT))
    page = AppTest.from_file(APP, default_timeout=30).run()

    page.button(key="predict.preset.virginica").click().run()
    assert page.slider(key="predict.petal_length.slider").value == 5.6
    page.button(key="predict.submit").click().run()

    assert not page.exception
    request = submitted.calls.last.request
    assert request.url.params["wait"] == "10.0"
    assert b'"petal_length":5.6' in request.content.replace(b" ", b"")
    linked = "[model version 4](http://mlflow.test/#/runs/the-run)"  # to the run that trained it
    assert f"**virginica** with 90% confidence ({linked})" in page.main.success[0].value
    assert len(page.session_state["predict.history"]) == 1
    assert labels(page, "page_link") == [f"Job {JOB} on the Jobs page"]


def test_a_prediction_not_done_within_the_wait_is_followed_on_its_events(
    api: respx.MockRouter,
) -> None:
    api.post("/v1/predictions").respond(202, json={"job_id": JOB, "status": "queued"})
    events = api.get(f"/v1/jobs/{JOB}/events").mock(
        return_value=stream(sse(ended(_job("succeeded", RESULT))))
    )
    page = AppTest.from_file(APP, default_timeout=30).run()

    page.button(key="predict.submit").click().run()

    assert not page.exception
    assert events.called
    assert "**virginica** with 90% confidence" in page.main.success[0].value


def test_an_unreachable_api_is_said_in_plain_words(api: respx.MockRouter) -> None:
    api.post("/v1/predictions").mock(side_effect=httpx.ConnectError("refused"))
    page = AppTest.from_file(APP, default_timeout=30).run()

    page.button(key="predict.submit").click().run()

    assert not page.exception
    assert "cannot be reached" in page.error[0].value


def test_a_refused_request_shows_the_api_message(api: respx.MockRouter) -> None:
    api.post("/v1/predictions").respond(
        422, json={"title": "Invalid request", "detail": "rows[0].petal_width: too big"}
    )
    page = AppTest.from_file(APP, default_timeout=30).run()

    page.button(key="predict.submit").click().run()

    assert "rows[0].petal_width: too big" in page.error[0].value


def test_the_slider_and_the_exact_input_stay_in_step(api: respx.MockRouter) -> None:
    page = AppTest.from_file(APP, default_timeout=30).run()

    page.slider(key="predict.petal_width.slider").set_value(1.7).run()
    assert page.number_input(key="predict.petal_width").value == 1.7
    page.number_input(key="predict.petal_width").set_value(0.9).run()
    assert page.slider(key="predict.petal_width.slider").value == 0.9
