"""Predict one flower: measurements in, species and probabilities out, through the API."""

from __future__ import annotations

from typing import Any, Literal

import altair as alt
import pandas as pd
import streamlit as st

from frontend import client
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
POLL_DEADLINE_SECONDS = 60.0


def _init_state() -> None:
    for feature in FEATURES:
        st.session_state.setdefault(f"predict.{feature}", TYPICAL_FLOWERS["setosa"][feature])
    st.session_state.setdefault("predict.history", [])


def _preset(species: str) -> None:
    for feature in FEATURES:
        st.session_state[f"predict.{feature}"] = TYPICAL_FLOWERS[species][feature]


def _inputs() -> dict[str, float]:
    st.write("Start from a typical flower:")
    columns = st.columns(len(TYPICAL_FLOWERS))
    for column, species in zip(columns, TYPICAL_FLOWERS, strict=True):
        column.button(
            species,
            key=f"predict.preset.{species}",
            on_click=_preset,
            args=(species,),
            width="stretch",
        )
    row = {}
    left, right = st.columns(2)
    for i, feature in enumerate(FEATURES):
        low, high = OBSERVED_RANGES[feature]
        row[feature] = (left if i < 2 else right).number_input(
            LABELS[feature],
            min_value=0.1,
            max_value=round(high + SLACK_CM, 1),
            step=0.1,
            format="%.1f",
            key=f"predict.{feature}",
            help=f"Iris flowers in the dataset measure {low}–{high} cm.",
        )
    return row


def _show_result(job: dict[str, Any]) -> None:
    result = job["result"]
    prediction = result["predictions"][0]
    species = prediction["species"]
    confidence = prediction["probabilities"][species]
    st.success(
        f"**{species}** with {confidence:.0%} confidence (model version {result['model_version']})"
    )
    probabilities = pd.DataFrame(
        {
            "species": list(prediction["probabilities"]),
            "probability": list(prediction["probabilities"].values()),
        }
    )
    chart = (
        alt.Chart(probabilities, height=140)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("species:N", sort=None, title=None),
            color=alt.Color("species:N", legend=None),
            tooltip=["species", alt.Tooltip("probability:Q", format=".1%")],
        )
    )
    st.altair_chart(chart, width="stretch")


def _state(job: dict[str, Any]) -> Literal["running", "complete", "error"]:
    if job["status"] == "succeeded":
        return "complete"
    return "error" if job["status"] in ("failed", "canceled") else "running"


def _predict(row: dict[str, float]) -> None:
    try:
        accepted = client.submit_prediction(row)
        with st.status(f"Job {accepted['job_id']} queued…", expanded=False) as status:
            job = client.wait_for_job(
                accepted["job_id"],
                POLL_DEADLINE_SECONDS,
                on_update=lambda j: status.update(label=f"Job {j['job_id']}: {j['status']}"),
            )
            status.update(label=f"Job {job['job_id']}: {job['status']}", state=_state(job))
    except client.ApiError as exc:
        st.error(str(exc))
        return
    if job["status"] == "succeeded":
        _show_result(job)
        prediction = job["result"]["predictions"][0]
        st.session_state["predict.history"].insert(
            0,
            {
                **row,
                "species": prediction["species"],
                "confidence": prediction["probabilities"][prediction["species"]],
                "model_version": job["result"]["model_version"],
            },
        )
    elif job["status"] == "failed":
        st.error(f"The prediction failed: {job['error']['message']}")
    else:
        st.warning(
            f"No answer within {POLL_DEADLINE_SECONDS:.0f} s; the job is still {job['status']}."
        )


_init_state()
st.title("Predict an Iris species")
row = _inputs()
if st.button("Predict", type="primary", key="predict.submit"):
    _predict(row)
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
