"""The Batch, Train and Models pages' logic, with the API faked at the HTTP boundary."""

from __future__ import annotations

from typing import Any

import httpx
import respx
from streamlit.testing.v1 import AppTest

from irisq.algorithms import training_from
from irisq.job_types import (
    BatchResult,
    ConfusionMatrix,
    FeatureColumns,
    PreviousChampion,
    SpeciesCounts,
    TrainingResult,
)
from irisq.schema import FEATURES, SPECIES
from tests.frontend.conftest import APP, READY, ended, job, labels, progress, sse, stream

BATCH = "b0000000-0000-4000-8000-000000000001"
TRAINING = "t0000000-0000-4000-8000-000000000001"
CSV = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
RESULT = (
    b"sepal_length,sepal_width,petal_length,petal_width,species,probability_setosa,"
    b"probability_versicolor,probability_virginica,model_version\n"
    b"5.1,3.5,1.4,0.2,setosa,0.97,0.02,0.01,3\n"
)
# The fakes are the contract's own models, so they cannot drift from what workers write.
SUMMARY = BatchResult(
    model_version="3",
    model_source="registry",
    rows_read=1,
    rows_scored=1,
    rows_rejected=0,
    counts=SpeciesCounts(setosa=1),
    label_column=None,
    labelled_rows=0,
    accuracy=None,
    delimiter=",",
    columns=FeatureColumns(**{f: f for f in FEATURES}),
    on_invalid="reject",
).model_dump(mode="json")


def _page(name: str) -> AppTest:
    page = AppTest.from_file(APP, default_timeout=30)
    page.run()
    page.switch_page(f"views/{name}.py").run()
    return page


def test_batch_page_shows_progress_result_and_download(api: respx.MockRouter) -> None:
    upload = api.post("/v1/batches").respond(202, json={"job_id": BATCH, "status": "queued"})
    events = api.get(f"/v1/jobs/{BATCH}/events").mock(
        return_value=stream(
            sse(
                progress(BATCH, 0.5, "scoring", "1-0"),
                ended(job(BATCH, "batch", "succeeded", result=SUMMARY)),
            )
        )
    )
    api.get(f"/v1/batches/{BATCH}/result").respond(200, content=RESULT)
    page = _page("batch")
    assert page.button(key="batch.submit").disabled  # nothing to send yet

    page.session_state["batch.job_id"] = BATCH  # as after a successful upload
    page.run()

    assert not page.exception
    assert "Scored 1 of 1 rows with model version 3." in page.success[0].value
    assert page.dataframe[0].value["species"].tolist() == ["setosa"]
    assert not upload.called
    assert events.call_count == 1  # followed on its event stream: nothing polled


def test_an_uploaded_file_goes_into_the_url_and_a_refresh_finds_it(
    api: respx.MockRouter,
) -> None:
    upload = api.post("/v1/batches").respond(202, json={"job_id": BATCH, "status": "queued"})
    api.get(f"/v1/jobs/{BATCH}/events").mock(
        return_value=stream(sse(ended(job(BATCH, "batch", "succeeded", result=SUMMARY))))
    )
    api.get(f"/v1/batches/{BATCH}/result").respond(200, content=RESULT)
    page = _page("batch")
    page.file_uploader(key="batch.file").set_value(("flowers.csv", CSV, "text/csv")).run()
    page.button(key="batch.submit").click().run()
    assert upload.called
    assert page.query_params["batch"] == BATCH

    fresh = AppTest.from_file(APP, default_timeout=30)  # a refresh: a new session, same URL
    fresh.run()
    fresh.query_params["batch"] = BATCH
    fresh.switch_page("views/batch.py").run()

    assert not fresh.exception
    assert "Scored 1 of 1 rows" in fresh.success[0].value
    assert labels(fresh, "page_link") == [f"Job {BATCH} on the Jobs page"]


def test_a_refused_file_job_lists_its_bad_cells(api: respx.MockRouter) -> None:
    details = [{"line": 3, "column": "sepal_width", "value": "abc", "message": "not a number"}]
    error = {"type": "invalid_csv", "message": "the file was refused: line 3", "details": details}
    failed = job(BATCH, "batch", "failed", error=error)
    api.get(f"/v1/jobs/{BATCH}/events").mock(return_value=stream(sse(ended(failed))))
    page = _page("batch")

    page.session_state["batch.job_id"] = BATCH
    page.run()

    assert "The file was not scored: the file was refused: line 3" in page.error[0].value
    assert page.dataframe[0].value["column"].tolist() == ["sepal_width"]


def test_train_page_follows_stages_and_shows_the_verdict(api: respx.MockRouter) -> None:
    submitted = api.post("/v1/training").respond(202, json={"job_id": TRAINING})
    result = TrainingResult(
        run_id="abc",
        experiment_id="1",
        model_version="5",
        training=training_from("decision_tree", {"max_depth": 1}),
        promoted=False,
        reason="test accuracy 0.6667 is below the champion's (version 4: 0.9111)",
        metrics={
            "accuracy": 0.6667,
            "f1_macro": 0.55,
            **{f"{m}_{s}": 0.5 for m in ("precision", "recall") for s in SPECIES},
        },
        confusion_matrix=ConfusionMatrix(
            labels=list(SPECIES), matrix=[[15, 0, 0], [0, 15, 0], [0, 15, 0]]
        ),
        previous_champion=PreviousChampion(version="4", accuracy=0.9111),
        export="model_2026_11_26_T10_00_00.joblib",
        run_url="http://mlflow.test/#/experiments/1/runs/abc",
    ).model_dump(mode="json")
    api.get(f"/v1/jobs/{TRAINING}/events").mock(
        return_value=stream(
            sse(
                progress(TRAINING, 0.35, "evaluating", "1-0"),
                ended(job(TRAINING, "training", "succeeded", result=result)),
            )
        )
    )
    page = _page("train")

    page.selectbox(key="train.algorithm").set_value("decision_tree").run()
    page.slider(key="train.decision_tree.max_depth").set_value(1).run()
    page.button(key="train.submit").click().run()

    assert not page.exception
    sent = submitted.calls.last.request.content.replace(b" ", b"")
    assert b'"algorithm":"decision_tree"' in sent
    assert b'"max_depth":1' in sent
    assert "Version 5 was registered but not promoted: test accuracy 0.6667" in page.info[0].value
    assert page.metric[0].value == "66.7%"
    assert page.query_params["training"] == TRAINING  # a refresh of the page follows it again


def _models(challenger: str | None = None, shadow: dict[str, Any] | None = None) -> dict[str, Any]:
    version = {
        "training": training_from("svc", {"C": 1.0}).model_dump(mode="json"),
        "metrics": {"accuracy": 0.93, "f1_macro": 0.93},
        "created_at": "2026-11-26T10:00:00Z",
        "status": "READY",
        "signed": True,
    }
    return {
        "name": "iris",
        "champion": "2",
        "challenger": challenger,
        "shadow": shadow,
        "versions": [
            {
                **version,
                "version": v,
                "run_id": f"run{v}",
                "run_url": f"http://mlflow.test/#/runs/run{v}",
                "description": f"Promoted to champion by the quality gate: reason {v}.",
                "is_champion": v == "2",
                "is_challenger": v == challenger,
            }
            for v in ("3", "2", "1")
        ],
    }


def test_models_page_marks_the_champion_and_links_each_run(api: respx.MockRouter) -> None:
    api.get("/v1/models").respond(200, json=_models())
    page = _page("models")

    assert not page.exception
    table = page.dataframe[0].value
    assert table["role"].tolist() == ["", "champion", ""]
    assert table["version"].tolist() == [3, 2, 1]
    assert table["algorithm"].tolist() == ["svc", "svc", "svc"]
    assert table["run"].tolist()[1] == "http://mlflow.test/#/runs/run2"
    assert table["gate"].tolist()[1] == "Promoted to champion by the quality gate: reason 2."
    assert "C=1.0" in table["parameters"].tolist()[0]
    assert not [b for b in page.button if b.key == "models.promote_challenger"]


def test_models_page_compares_the_challenger_and_promotes_it(api: respx.MockRouter) -> None:
    confusion = {a: {b: (40 if a == b else 1) for b in SPECIES} for a in SPECIES}
    shadow = {
        "champion": "2",
        "challenger": "3",
        "rows": 126,
        "agreement": 120 / 126,
        "mean_probability_gap": 0.0421,
        "confusion": confusion,
        "failures": 0,
    }
    api.get("/v1/models").respond(200, json=_models("3", shadow))
    promoted = api.post("/v1/models/3/promote").respond(200, json=_models())
    page = _page("models")

    assert not page.exception
    assert page.dataframe[0].value["role"].tolist() == ["challenger", "champion", ""]
    assert [m.value for m in page.metric] == ["126", "95.2%", "0.042", "0"]
    assert page.dataframe[1].value.loc["setosa", "setosa"] == 40
    page.button(key="models.promote_challenger").click().run()
    assert promoted.called
    assert "Version 3 is the champion now." in page.success[0].value


def test_models_page_says_when_the_api_is_down(api: respx.MockRouter) -> None:
    api.get("/v1/models").mock(side_effect=httpx.ConnectError("refused"))
    page = _page("models")

    assert not page.exception
    assert "cannot be reached" in page.error[0].value


def test_the_sidebar_passes_on_the_apis_warnings(api: respx.MockRouter) -> None:
    open_api = "NO API KEYS CONFIGURED: the API is open and every caller is admin."
    api.get("/readyz").respond(
        200, json={"ready": True, "auth": "open", "warnings": [open_api], "checks": {}}
    )

    page = AppTest.from_file(APP, default_timeout=30)
    page.run()

    assert [warning.value for warning in page.sidebar.warning] == [open_api]
    assert [s.value for s in page.sidebar.success] == ["API ready"]


def test_with_keys_a_visitor_signs_in_and_sees_the_pages_of_their_role(
    api: respx.MockRouter,
) -> None:
    api.get("/readyz").respond(200, json={**READY, "auth": "api_keys"})
    me = api.get("/v1/me").respond(200, json={"name": "alice", "role": "predict"})
    page = AppTest.from_file(APP, default_timeout=30).run()

    assert page.title[0].value == "Sign in to irisq"
    page.text_input(key="auth.input").input("irisq_alice")
    page.button[0].click().run()  # the form's submit button

    assert not page.exception
    assert me.calls.last.request.headers["Authorization"] == "Bearer irisq_alice"
    assert page.session_state["auth.me"]["role"] == "predict"
    assert page.button(key="predict.submit")  # the Predict page, now
    assert "Signed in as **alice** (predict key)" in page.sidebar.caption[-1].value


def test_an_api_that_cannot_say_how_it_runs_is_not_taken_for_open(
    api: respx.MockRouter,
) -> None:
    api.get("/readyz").mock(side_effect=httpx.ConnectError("refused"))
    page = AppTest.from_file(APP, default_timeout=30).run()

    assert page.title[0].value == "Sign in to irisq"
    assert "auth.me" not in page.session_state


def test_a_running_batch_can_be_canceled_from_the_page(api: respx.MockRouter) -> None:
    canceled = job(BATCH, "batch", "canceled", error={"type": "canceled", "message": "by you"})
    cancel = api.post(f"/v1/jobs/{BATCH}/cancel").respond(200, json=canceled)
    api.get(f"/v1/jobs/{BATCH}/events").mock(
        side_effect=[
            # A run of the page ends only when the job does (or the API fails, as here), so
            # this is how a test sees the page with the job still going.
            httpx.Response(503, json={"detail": "Redis is away"}),
            stream(sse(ended(canceled))),
        ]
    )
    page = _page("batch")
    page.session_state["batch.job_id"] = BATCH
    page.run()
    assert cancel.call_count == 0

    page.button(key="batch.cancel").click().run()

    assert not page.exception
    assert cancel.call_count == 1
    assert "The job was canceled" in page.info[0].value
    assert "batch.cancel" not in [button.key for button in page.button]


def test_a_scored_batch_can_be_deleted_from_the_page(api: respx.MockRouter) -> None:
    scored = job(BATCH, "batch", "succeeded", result=SUMMARY)
    api.get(f"/v1/jobs/{BATCH}/events").mock(return_value=stream(sse(ended(scored))))
    api.get(f"/v1/batches/{BATCH}/result").respond(200, content=RESULT)
    delete = api.delete(f"/v1/jobs/{BATCH}").respond(204)
    page = _page("batch")
    page.session_state["batch.job_id"] = BATCH
    page.run()

    page.button(key="batch.delete").click().run()

    assert not page.exception
    assert delete.called
    assert page.session_state["batch.job_id"] is None
    assert "batch" not in page.query_params
    assert "The job and its files were deleted." in page.success[0].value
