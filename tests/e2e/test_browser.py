"""What a person does on the page, in a real browser against the real stack."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from playwright.sync_api import Page, expect
from sklearn.datasets import load_iris

from devstack.browser import score_three_flowers
from devstack.processes import wait_for
from irisq.schema import FEATURES
from tests.e2e.conftest import screenshot
from tests.support.stack import SETOSA, Stack
from worker import prediction_log

VIRGINICA_INPUTS = {
    "Sepal length (cm)": "6.6",
    "Sepal width (cm)": "3.0",
    "Petal length (cm)": "5.6",
    "Petal width (cm)": "2.0",
}


def test_predict_a_flower(page: Page, frontend_url: str) -> None:
    page.goto(frontend_url)
    expect(page.get_by_text("API ready")).to_be_visible()

    page.get_by_role("button", name="Typical virginica").click()
    # Like a person, read all four numbers before pressing Predict: the preset's rerun
    # redraws them one by one, and a click before the last one lands sends the old value.
    for label, value in VIRGINICA_INPUTS.items():
        expect(page.get_by_role("spinbutton", name=label)).to_have_value(value)
    page.get_by_role("button", name="Predict", exact=True).click()

    expect(page.get_by_text(re.compile(r"virginica with \d+% confidence"))).to_be_visible()
    expect(page.get_by_text("This session's predictions")).to_be_visible()
    page.wait_for_timeout(1500)  # let the charts draw before the picture
    screenshot(page, "predict")


def test_the_predict_page_answers_at_its_own_name_too(page: Page, frontend_url: str) -> None:
    page.goto(f"{frontend_url}/predict")  # the home page, as a link or a bookmark names it

    expect(page.get_by_role("heading", name="Predict an Iris species")).to_be_visible()
    # Usable, not under Streamlit's "Page not found" dialog (which makes the page inert).
    page.get_by_role("button", name="Typical virginica").click()
    for label, value in VIRGINICA_INPUTS.items():
        expect(page.get_by_role("spinbutton", name=label)).to_have_value(value)
    expect(page.get_by_text("Page not found")).to_have_count(0)


def test_score_a_file_and_download_the_result(
    page: Page, frontend_url: str, tmp_path: Path
) -> None:
    score_three_flowers(page, frontend_url, tmp_path)

    with page.expect_download() as download:
        page.get_by_role("button", name="Download the scored CSV").click()

    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["irisq_species"] for r in rows] == ["setosa", "versicolor", "virginica"]
    expect(page.get_by_text("Accuracy vs 'Species'")).to_be_visible()
    page.wait_for_timeout(1500)
    screenshot(page, "batch")


def test_a_refused_file_shows_the_api_message(
    page: Page, frontend_url: str, tmp_path: Path
) -> None:
    upload = tmp_path / "wrong.csv"
    upload.write_text("a,b,c\n1,2,3\n")
    page.goto(f"{frontend_url}/batch")

    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Score file").click()

    expect(page.get_by_text("missing required column(s)")).to_be_visible()
    screenshot(page, "batch-refused")


def test_retrain_and_see_the_new_version_listed(page: Page, frontend_url: str) -> None:
    page.goto(f"{frontend_url}/train")

    page.get_by_role("button", name="Retrain").click()
    verdict = page.get_by_text(re.compile(r"Version \d+ (became the champion|was registered)"))
    expect(verdict).to_be_visible(timeout=120_000)
    verdict_text = verdict.inner_text()
    version = re.search(r"Version (\d+)", verdict_text)
    assert version is not None
    expect(page.get_by_role("link", name="Open this run in MLflow")).to_be_visible()
    page.wait_for_timeout(1500)
    screenshot(page, "train")

    page.goto(f"{frontend_url}/models")
    expect(page.get_by_text(re.compile(r"registered version\(s\)"))).to_be_visible()
    page.wait_for_timeout(1500)
    screenshot(page, "models")
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    summary = page.get_by_text(re.compile(r"registered version\(s\)")).inner_text()
    listed = re.search(r"(\d+) registered version", summary)
    assert listed is not None
    assert int(listed.group(1)) >= int(version.group(1))  # versions count from 1, none deleted
    if "became the champion" in verdict_text:
        assert f"the champion is version {version.group(1)}" in summary


def _compared(stack: Stack) -> bool:
    assert stack.predict([SETOSA])["status"] == "succeeded"
    shadow = stack.api.get("/v1/models").json()["shadow"]
    return bool(shadow and shadow["rows"])


def test_train_a_challenger_watch_it_compared_and_stop_it(
    page: Page, frontend_url: str, stack: Stack
) -> None:
    page.goto(f"{frontend_url}/train")
    page.get_by_text("Register it as the challenger instead").click()
    page.get_by_role("button", name="Retrain").click()
    verdict = page.get_by_text(re.compile(r"Version \d+ is the challenger"))
    expect(verdict).to_be_visible(timeout=120_000)
    found = re.search(r"Version (\d+)", verdict.inner_text())
    assert found is not None
    challenger = found.group(1)
    try:
        wait_for(
            lambda: (
                stack.predict([SETOSA]) and stack.api.get("/v1/models").json()["shadow"]["rows"]
            ),
            60,
            "a prediction compared with the challenger",
            every=0.5,
        )

        page.goto(f"{frontend_url}/models")
        expect(page.get_by_text(f"Challenger: version {challenger}")).to_be_visible()
        expect(page.get_by_text("Rows compared")).to_be_visible()
        screenshot(page, "models-challenger")
        page.get_by_role("button", name="Stop shadow scoring").click()
        expect(page.get_by_text("There is no challenger now.")).to_be_visible()
    finally:
        stack.api.delete("/v1/models/challenger")
    assert stack.api.get("/v1/models").json()["challenger"] is None


def test_the_monitoring_page_shows_drift_on_longer_petals(
    page: Page, frontend_url: str, stack: Stack
) -> None:
    iris = load_iris()
    flowers = iris.data[np.random.default_rng(7).integers(0, len(iris.data), 5_000)]
    flowers[:, FEATURES.index("petal_length")] += 2.0  # longer than any iris's
    since = datetime.now(UTC) - timedelta(seconds=1)
    body = {"dataframe_split": {"columns": list(FEATURES), "data": flowers.tolist()}}
    assert stack.api.post("/invocations", json=body).status_code == 200
    wait_for(
        lambda: (
            prediction_log.read(
                stack.settings.prediction_log_dir, since, datetime.now(UTC)
            ).num_rows
            >= 5_000
        ),
        60,
        "the rows in the prediction log",
    )

    page.goto(f"{frontend_url}/monitoring")
    page.get_by_text("Last hour", exact=True).click()

    verdict = page.get_by_text(re.compile(r"Drift on .*petal length"))
    expect(verdict).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Training against this window")).to_be_visible()
    page.wait_for_timeout(1500)  # the charts drawn
    screenshot(page, "monitoring")
