"""The Jobs page: recent jobs from the listing, one opened from the URL (`?job=`) with its
result as its kind reads, a running one followed on its event stream. The API is faked at the
HTTP boundary; selecting a row in the table is the browser walk-through's (tests/e2e)."""

from __future__ import annotations

from typing import Any

import httpx
import respx
from streamlit.testing.v1 import AppTest

from irisq.algorithms import training_from
from irisq.job_types import (
    ConfusionMatrix,
    PredictionResult,
    RowPrediction,
    SpeciesProbabilities,
    TrainingResult,
)
from irisq.schema import SPECIES
from tests.frontend.conftest import APP, ended, job, labels, progress, sse, stream
from tests.frontend.test_pages import SUMMARY

BATCH = "b0000000-0000-4000-8000-00000000000b"
PREDICTION = "p0000000-0000-4000-8000-00000000000p"
TRAINING = "t0000000-0000-4000-8000-00000000000t"
PREDICTED = PredictionResult(
    model_version="4",
    model_source="registry",
    predictions=[
        RowPrediction(
            species="versicolor",
            probabilities=SpeciesProbabilities(setosa=0.05, versicolor=0.8, virginica=0.15),
        )
    ],
).model_dump(mode="json")
TRAINED = TrainingResult(
    run_id="abc",
    experiment_id="1",
    model_version="6",
    training=training_from("svc", {"C": 2.0}),
    promoted=True,
    reason="test accuracy 0.9778 is at least the champion's (version 5: 0.9556)",
    metrics={"accuracy": 0.9778, "f1_macro": 0.977},
    confusion_matrix=ConfusionMatrix(
        labels=list(SPECIES), matrix=[[15, 0, 0], [0, 15, 0], [0, 1, 14]]
    ),
    previous_champion=None,
    export="model.joblib",
    run_url="http://mlflow.test/#/experiments/1/runs/abc",
).model_dump(mode="json")


def _summary(full: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in full.items() if k != "result"}


def _listed(*jobs: dict[str, Any], next_cursor: str | None = None) -> httpx.Response:
    return httpx.Response(
        200, json={"jobs": [_summary(j) for j in jobs], "next_cursor": next_cursor}
    )


def _jobs_page(opened: str | None = None) -> AppTest:
    page = AppTest.from_file(APP, default_timeout=30)
    page.run()
    if opened:
        page.query_params["job"] = opened  # a link, a bookmark, or a refresh of the page
    page.switch_page("views/jobs.py").run()
    return page


def test_the_table_lists_recent_jobs_newest_first(api: respx.MockRouter) -> None:
    listing = api.get("/v1/jobs").mock(
        return_value=_listed(
            job(BATCH, "batch", "running", progress=0.4, stage="scoring"),
            job(PREDICTION, "prediction", "succeeded", result=PREDICTED),
        )
    )
    page = _jobs_page()

    assert not page.exception
    table = page.dataframe[0].value
    assert table["job id"].tolist() == [BATCH, PREDICTION]
    assert table["kind"].tolist() == ["batch", "prediction"]
    assert table["status"].tolist() == ["running", "succeeded"]
    assert table["progress"].tolist() == [0.4, 1.0]
    assert "owner" not in table  # one person's jobs
    assert listing.calls.last.request.url.params["limit"] == "20"
    assert "jobs.older" not in [button.key for button in page.button]


def test_filters_go_to_the_api_and_short_pages_are_followed_by_cursor(
    api: respx.MockRouter,
) -> None:
    listing = api.get("/v1/jobs").mock(return_value=_listed())
    page = _jobs_page()
    listing.mock(
        side_effect=[  # a filter answers short pages while it scans: go on to 20 rows
            _listed(job(BATCH, "batch", "failed"), next_cursor="c1"),
            _listed(*(job(f"{i}", "batch", "failed") for i in range(19)), next_cursor="c2"),
        ]
    )

    page.selectbox(key="jobs.kind").set_value("batch")
    page.selectbox(key="jobs.status").set_value("failed").run()

    first, second = (call.request.url.params for call in listing.calls[-2:])
    assert (first["kind"], first["status"], first.get("cursor")) == ("batch", "failed", None)
    assert (second["cursor"], second["limit"]) == ("c1", "19")
    assert len(page.dataframe[0].value) == 20
    assert page.button(key="jobs.older")  # c2: there is more


def test_older_jobs_show_twenty_more(api: respx.MockRouter) -> None:
    twenty = [job(f"{i:02}", "prediction", "succeeded") for i in range(20)]
    listing = api.get("/v1/jobs").mock(return_value=_listed(*twenty, next_cursor="c1"))
    page = _jobs_page()

    listing.mock(return_value=_listed(*twenty, *twenty[:5]))
    page.button(key="jobs.older").click().run()

    assert listing.calls.last.request.url.params["limit"] == "40"
    assert len(page.dataframe[0].value) == 25
    assert "jobs.older" not in [button.key for button in page.button]


def test_an_opened_prediction_shows_its_species(api: respx.MockRouter) -> None:
    done = job(PREDICTION, "prediction", "succeeded", result=PREDICTED)
    api.get("/v1/jobs").mock(return_value=_listed(done))
    api.get(f"/v1/jobs/{PREDICTION}").respond(200, json=done)
    page = _jobs_page(opened=PREDICTION)

    assert not page.exception
    assert page.main.subheader[0].value == "Prediction job"
    linked = "[model version 4](http://mlflow.test/#/runs/the-run)"  # to the run that trained it
    assert f"**versicolor** with 80% confidence ({linked})" in page.success[0].value
    assert page.session_state["jobs.table"]["selection"]["rows"] == [0]  # its row, selected


def test_an_opened_batch_shows_its_counts_and_offers_its_files(api: respx.MockRouter) -> None:
    done = job(BATCH, "batch", "succeeded", result={**SUMMARY, "rows_rejected": 2})
    api.get("/v1/jobs").mock(return_value=_listed(done))
    api.get(f"/v1/jobs/{BATCH}").respond(200, json=done)
    result = api.get(f"/v1/batches/{BATCH}/result").respond(200, content=b"x")
    page = _jobs_page(opened=BATCH)

    assert not page.exception
    assert "Scored 1 of 1 rows with model version 3." in page.success[0].value
    assert [m.value for m in page.metric][:2] == ["1", "2"]
    downloads = labels(page, "download_button")
    assert downloads == ["Download the scored CSV", "Download the skipped rows"]
    assert not result.called  # fetched when clicked, not on every run of the page


def test_an_opened_training_shows_the_verdict(api: respx.MockRouter) -> None:
    done = job(TRAINING, "training", "succeeded", result=TRAINED)
    api.get("/v1/jobs").mock(return_value=_listed())  # not in the first rows: opens anyway
    api.get(f"/v1/jobs/{TRAINING}").respond(200, json=done)
    page = _jobs_page(opened=TRAINING)

    assert not page.exception
    assert "Version 6 became the champion: test accuracy 0.9778" in page.success[0].value
    assert page.metric[0].value == "97.8%"
    assert page.session_state["jobs.table"]["selection"]["rows"] == []


def test_a_failed_job_lists_its_bad_cells(api: respx.MockRouter) -> None:
    details = [{"line": 3, "column": "sepal_width", "value": "abc", "message": "not a number"}]
    error = {"type": "invalid_csv", "message": "the file was refused: line 3", "details": details}
    failed = job(BATCH, "batch", "failed", error=error)
    api.get("/v1/jobs").mock(return_value=_listed(failed))
    api.get(f"/v1/jobs/{BATCH}").respond(200, json=failed)
    page = _jobs_page(opened=BATCH)

    assert "Failed: the file was refused: line 3" in page.error[0].value
    assert page.dataframe[1].value["column"].tolist() == ["sepal_width"]


def test_a_running_job_is_followed_on_its_events_then_shown(api: respx.MockRouter) -> None:
    running = job(BATCH, "batch", "running", progress=0.1, stage="scoring")
    done = job(BATCH, "batch", "succeeded", result=SUMMARY)
    listing = api.get("/v1/jobs").mock(side_effect=[_listed(running), _listed(done)])
    read = api.get(f"/v1/jobs/{BATCH}").mock(
        side_effect=[httpx.Response(200, json=running), httpx.Response(200, json=done)]
    )
    events = api.get(f"/v1/jobs/{BATCH}/events").mock(
        return_value=stream(sse(progress(BATCH, 0.5, "scoring", "1-0"), ended(done)))
    )
    page = _jobs_page(opened=BATCH)

    assert not page.exception
    assert events.call_count == 1  # followed on its stream...
    assert read.call_count == 2  # ...read before, and once more when it ended (no polling)
    assert listing.call_count == 2  # the table says it ended too
    assert "Scored 1 of 1 rows" in page.success[0].value
    assert page.dataframe[0].value["status"].tolist() == ["succeeded"]


def test_a_running_job_can_be_canceled(api: respx.MockRouter) -> None:
    running = job(BATCH, "batch", "queued", progress=0.0)
    canceled = job(
        BATCH, "batch", "canceled", error={"type": "canceled", "message": "canceled by you"}
    )
    api.get("/v1/jobs").mock(return_value=_listed(running))
    api.get(f"/v1/jobs/{BATCH}").mock(
        side_effect=[httpx.Response(200, json=running), httpx.Response(200, json=canceled)]
    )
    api.get(f"/v1/jobs/{BATCH}/events").mock(
        # The run ends when the API fails (a test's way to see the page mid-job).
        return_value=httpx.Response(503, json={"detail": "Redis is away"})
    )
    cancel = api.post(f"/v1/jobs/{BATCH}/cancel").respond(200, json=canceled)
    page = _jobs_page(opened=BATCH)

    page.button(key="jobs.cancel").click().run()

    assert not page.exception
    assert cancel.called
    assert "Canceled by you." in page.info[0].value
    assert "jobs.cancel" not in [button.key for button in page.button]


def test_a_deleted_job_closes_and_leaves_the_url(api: respx.MockRouter) -> None:
    done = job(PREDICTION, "prediction", "succeeded", result=PREDICTED)
    api.get("/v1/jobs").mock(side_effect=[_listed(done), _listed(done), _listed()])
    api.get(f"/v1/jobs/{PREDICTION}").respond(200, json=done)
    delete = api.delete(f"/v1/jobs/{PREDICTION}").respond(204)
    page = _jobs_page(opened=PREDICTION)

    page.button(key="jobs.delete").click().run()

    assert not page.exception
    assert delete.called
    assert "job" not in page.query_params
    assert f"Job {PREDICTION} was deleted." in page.success[0].value
    assert not page.main.subheader  # nothing opened


def test_a_job_that_is_gone_says_so(api: respx.MockRouter) -> None:
    api.get("/v1/jobs").mock(return_value=_listed())
    api.get(f"/v1/jobs/{BATCH}").respond(
        410, json={"title": "Gone", "detail": f"job {BATCH!r} was deleted"}
    )
    page = _jobs_page(opened=BATCH)

    assert not page.exception
    assert "was deleted" in page.error[0].value
    page.button(key="jobs.close").click().run()
    assert "job" not in page.query_params
