"""Retrain: choose an algorithm and its main settings, follow the run, see the verdict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from frontend import client, job_view
from frontend.status import cancel_and_note, follow, job_link, show_note
from irisq.algorithms import ALGORITHM_TITLES
from irisq.job_types import TrainingResult

DEADLINE_SECONDS = 5 * 60
NOTE = "train.message"
Widgets = Callable[[str], dict[str, Any]]


def _logistic_regression(key: str) -> dict[str, Any]:
    return {"C": st.number_input("C (inverse regularisation)", 0.001, 1000.0, 1.0, key=f"{key}.C")}


def _svc(key: str) -> dict[str, Any]:
    return {
        "C": st.number_input("C (regularisation)", 0.001, 1000.0, 1.0, key=f"{key}.C"),
        "kernel": st.selectbox("Kernel", ["rbf", "linear", "poly", "sigmoid"], key=f"{key}.kernel"),
    }


def _decision_tree(key: str) -> dict[str, Any]:
    return {
        "max_depth": st.slider("Maximum depth", 1, 20, 5, key=f"{key}.max_depth"),
        "criterion": st.selectbox(
            "Criterion", ["gini", "entropy", "log_loss"], key=f"{key}.criterion"
        ),
    }


def _random_forest(key: str) -> dict[str, Any]:
    return {
        "n_estimators": st.slider("Trees", 10, 500, 100, step=10, key=f"{key}.trees"),
        "max_depth": st.slider("Maximum depth", 1, 20, 5, key=f"{key}.max_depth"),
    }


def _knn(key: str) -> dict[str, Any]:
    return {
        "n_neighbors": st.slider("Neighbours (k)", 1, 30, 5, key=f"{key}.k"),
        "weights": st.selectbox("Weights", ["uniform", "distance"], key=f"{key}.weights"),
    }


# The main hyperparameters of each algorithm, as widgets; the rest keep their defaults.
WIDGETS: dict[str, Widgets] = {
    "logistic_regression": _logistic_regression,
    "svc": _svc,
    "decision_tree": _decision_tree,
    "random_forest": _random_forest,
    "knn": _knn,
}


def _params(algorithm: str) -> dict[str, Any]:
    """The settings chosen for `algorithm`; an algorithm without widgets trains on defaults."""
    widgets = WIDGETS.get(algorithm)
    if widgets is None:
        st.caption("This algorithm trains with its default settings.")
        return {}
    return widgets(f"train.{algorithm}")


st.session_state.setdefault("train.job_id", st.query_params.get("training"))
st.title("Train a model")
st.write(
    "Training uses the 150 Iris flowers (70 % to fit, 30 % to test). The new version is "
    "registered in MLflow and becomes the champion only if it is at least as accurate as "
    "the current one on the same test flowers."
)
algorithm = st.selectbox(
    "Algorithm",
    list(ALGORITHM_TITLES),
    format_func=ALGORITHM_TITLES.__getitem__,
    key="train.algorithm",
)
params = _params(algorithm)
as_challenger = st.checkbox(
    "Register it as the challenger instead",
    key="train.challenger",
    help="Skip the quality gate: the new version is scored in the shadow of the champion on "
    "live predictions (clients still get the champion's answers), and the Models page shows "
    "how often the two agree, with a button to promote it.",
)
if st.button("Retrain", type="primary", key="train.submit"):
    try:
        submitted = client.submit_training(algorithm, params, challenger=as_challenger)
        st.session_state["train.job_id"] = submitted["job_id"]
        st.query_params["training"] = st.session_state["train.job_id"]  # kept across a refresh
    except client.ApiError as exc:
        st.error(str(exc))


def _cancel(job_id: str) -> None:
    cancel_and_note(job_id, NOTE)


if st.session_state["train.job_id"]:
    running = st.session_state["train.job_id"]
    job_link(running)
    cancel = st.empty()  # shown while training runs; a click stops it (and reruns the page)
    cancel.button("Cancel training", key="train.cancel", on_click=_cancel, args=(running,))
    job = follow(
        running, DEADLINE_SECONDS, "Training is still running; come back to this page to follow it."
    )
    if job is not None:
        cancel.empty()
    show_note(NOTE)
    if job and job["status"] == "succeeded":
        result = client.result_of(job)
        if isinstance(result, TrainingResult):
            job_view.training_result(result)
        else:  # an id of another kind put in the URL
            st.warning(f"Job {running} is not a training.")
    elif job and job["status"] == "failed":
        st.error(f"Training failed: {job['error']['message']}")
    elif job and job["status"] == "canceled":
        st.info("Training was canceled; it stopped at its next stage.")
