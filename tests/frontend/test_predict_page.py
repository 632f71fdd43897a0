"""The Predict page's logic, with the API faked at the HTTP boundary (respx)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "frontend" / "app.py")
API = "http://api.test"
JOB = "3f1c2a9e-0000-4000-8000-000000000001"
READY = {"ready": True, "checks": {"redis": {"ok": True, "detail": "reachable"}}}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    from irisq.settings import get_settings

    monkeypatch.setenv("IRISQ_API_URL", API)
    get_settings.cache_clear()
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/readyz").respond(200, json=READY)
        yield router
    get_settings.cache_clear()


def _job(status: str, result: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "job_id": JOB,
        "kind": "prediction",
        "status": status,
        "progress": 1.0,
        "result": result,
        "error": None,
    }


def test_predict_submits_the_inputs_and_shows_the_species(api: respx.MockRouter) -> None:
    submitted = api.post("/v1/predictions").respond(202, json={"job_id": JOB, "status": "queued"})
    result = {
        "model_version": "4",
        "predictions": [
            {
                "species": "virginica",
                "probabilities": {"setosa": 0.01, "versicolor": 0.09, "virginica": 0.9},
            }
        ],
    }
    api.get(f"/v1/jobs/{JOB}").mock(
        side_effect=[
            httpx.Response(200, json=_job("running")),
            httpx.Response(200, json=_job("succeeded", result)),
        ]
    )
    page = AppTest.from_file(APP, default_timeout=30).run()

    page.button(key="predict.preset.virginica").click().run()
    page.button(key="predict.submit").click().run()

    assert not page.exception
    body = submitted.calls.last.request.content
    assert b'"petal_length":5.6' in body.replace(b" ", b"")
    assert "**virginica** with 90% confidence (model version 4)" in page.success[-1].value
    assert len(page.session_state["predict.history"]) == 1


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
