"""Predict one flower: measurements in, species and probabilities out, through the API."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend import charts, client
from frontend.status import follow, job_link, version_link
from irisq.job_types import PredictionResult
from irisq.ranges import OBSERVED_RANGES, TYPICAL_FLOWERS
from irisq.schema import FEATURES

LABELS = {
    "sepal_length": "Sepal length (cm)",
    "sepal_width": "Sepal width (cm)",
    "petal_length": "Petal length (cm)",
    "petal_width": "Petal width (cm)",
}
# Inputs may go a little past what the dataset saw; the API refuses only the absurd.
SLACK_CM = 1.0
# The API holds the request until the job ends, for up to this long (`?wait=`): a warm
# worker answers in milliseconds, a cold one loads the champion first (a few seconds).
WAIT_SECONDS = 10.0
DEADLINE_SECONDS = 60.0  # then, if it is still queued (no worker?), its events for this long


def _init_state() -> None:
    for feature in FEATURES:
        value = TYPICAL_FLOWERS["setosa"][feature]
        st.session_state.setdefault(f"predict.{feature}", value)
        st.session_state.setdefault(f"predict.{feature}.slider", value)
    st.session_state.setdefault("predict.history", [])
    st.session_state.setdefault("predict.last", None)
    st.session_state.setdefault("predict.job_id", None)


def _preset(species: str) -> None:
    for feature in FEATURES:
        st.session_state[f"predict.{feature}"] = TYPICAL_FLOWERS[species][feature]
        st.session_state[f"predict.{feature}.slider"] = TYPICAL_FLOWERS[species][feature]


def _sync(source: str, target: str) -> None:
    st.session_state[target] = round(float(st.session_state[source]), 1)


def _inputs() -> dict[str, float]:
    st.write("Start from a typical flower, then adjust:")
    columns = st.columns(len(TYPICAL_FLOWERS))
    for column, species in zip(columns, TYPICAL_FLOWERS, strict=True):
        column.button(
            f"Typical {species}",
            key=f"predict.preset.{species}",
            on_click=_preset,
            args=(species,),
            width="stretch",
        )
    row = {}
    for feature in FEATURES:
        low, high = OBSERVED_RANGES[feature]
        top = round(high + SLACK_CM, 1)
        exact, slide = st.columns([1, 3], vertical_alignment="bottom")
        row[feature] = exact.number_input(
            LABELS[feature],
            min_value=0.1,
            max_value=top,
            step=0.1,
            format="%.1f",
            key=f"predict.{feature}",
            on_change=_sync,
            args=(f"predict.{feature}", f"predict.{feature}.slider"),
            help=f"Iris flowers in the dataset measure {low}–{high} cm.",
        )
        slide.slider(
            LABELS[feature],
            min_value=0.1,
            max_value=top,
            step=0.1,
            format="%.1f",
            key=f"predict.{feature}.slider",
            on_change=_sync,
            args=(f"predict.{feature}.slider", f"predict.{feature}"),
            label_visibility="collapsed",
        )
    return row


def _predict(row: dict[str, float]) -> None:
    try:
        answer = client.submit_prediction(row, wait_seconds=WAIT_SECONDS)
    except client.ApiError as exc:
        st.error(str(exc))
        return
    job: dict[str, Any] | None = answer
    if answer["status"] not in client.FINAL:
        job = follow(
            answer["job_id"],
            DEADLINE_SECONDS - WAIT_SECONDS,
            f"No answer within {DEADLINE_SECONDS:.0f} s; the job is still queued.",
        )
    st.session_state["predict.job_id"] = answer["job_id"]
    if job is None:
        return
    if job["status"] == "failed":
        st.error(f"The prediction failed: {job['error']['message']}")
    elif job["status"] == "canceled":
        st.info("The prediction was canceled.")
    else:
        result = client.result_of(job)
        assert isinstance(result, PredictionResult)
        prediction = result.predictions[0].model_dump()
        species = prediction["species"]
        last = {"row": row, "prediction": prediction, "version": result.model_version}
        st.session_state["predict.last"] = last
        st.session_state["predict.history"].insert(
            0,
            {
                **row,
                "species": species,
                "confidence": prediction["probabilities"][species],
                "model_version": result.model_version,
            },
        )


def _show(last: dict[str, Any]) -> None:
    prediction = last["prediction"]
    species = prediction["species"]
    confidence = prediction["probabilities"][species]
    st.success(f"**{species}** with {confidence:.0%} confidence ({version_link(last['version'])})")
    left, right = st.columns(2)
    with left:
        st.caption("Probability of each species")
        st.altair_chart(charts.probabilities(prediction["probabilities"]), width="stretch")
    with right:
        st.caption("Your flower among the 150 flowers of the Iris dataset")
        st.altair_chart(charts.flower_on_iris(last["row"], species), width="stretch")


_init_state()
st.title("Predict an Iris species")
row = _inputs()
if st.button("Predict", type="primary", key="predict.submit"):
    _predict(row)
if st.session_state["predict.last"]:
    _show(st.session_state["predict.last"])
if st.session_state["predict.job_id"]:
    job_link(st.session_state["predict.job_id"])
if st.session_state["predict.history"]:
    st.subheader("This session's predictions")
    st.dataframe(
        pd.DataFrame(st.session_state["predict.history"]),
        hide_index=True,
        column_config={
            "confidence": st.column_config.NumberColumn(format="percent"),
            "model_version": st.column_config.TextColumn("model version"),
        },
    )
