"""One job opened on the Jobs page: its status, followed live while it runs, then its result
(or error) as its kind reads, with Cancel and Delete as the Batch page has them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import pandas as pd
import streamlit as st

from frontend import charts, client
from frontend.status import cancel_and_note, delete_and_note, follow, percent, version_link
from irisq.job_types import BatchResult, PredictionResult, TrainingResult

DEADLINE_SECONDS = 30 * 60  # as long as the Batch page follows a file
PREVIEW_ROWS = 200
NOTE = "jobs.message"  # the Jobs page shows it
TITLES = {"prediction": "Prediction", "batch": "Batch scoring", "training": "Training"}
Colour = Literal["gray", "blue", "green", "red", "orange"]
BADGES: dict[str, tuple[Colour, str]] = {
    "queued": ("gray", ":material/schedule:"),
    "running": ("blue", ":material/autorenew:"),
    "succeeded": ("green", ":material/check_circle:"),
    "failed": ("red", ":material/error:"),
    "canceled": ("orange", ":material/cancel:"),
}


def show(job_id: str) -> None:
    """The job `job_id`; a running one is followed on its event stream until it ends."""
    try:
        job = client.get_job(job_id)
    except client.ApiError as exc:  # deleted, expired, someone else's, or a mistyped URL
        st.error(str(exc))
        st.button("Close", key="jobs.close", on_click=close)
        return
    _header(job)
    if job["status"] not in client.FINAL:
        actions = st.empty()  # shown while the job runs; a click stops it (and reruns)
        actions.button("Cancel", key="jobs.cancel", on_click=_cancel, args=(job_id,))
        ended = follow(job_id, DEADLINE_SECONDS, "Still running; come back to follow it.")
        if ended is not None:
            st.rerun()  # the table above shows the end too
        return
    if job["status"] == "succeeded":
        _result(job)
    else:
        _stopped(job)
    buttons = st.container(horizontal=True)
    buttons.button("Close", key="jobs.close", on_click=close)
    buttons.button(
        "Delete this job",
        key="jobs.delete",
        on_click=_delete,
        args=(job_id,),
        help="Its record, its result and its files go now, for good.",
    )


def close() -> None:
    st.query_params.pop("job", None)


def _header(job: dict[str, Any]) -> None:
    color, icon = BADGES[job["status"]]
    st.subheader(f"{TITLES[job['kind']]} job", anchor=False)
    st.badge(job["status"], color=color, icon=icon)
    facts = [f"`{job['job_id']}`", f"created {_when(job['created_at'])}"]
    if job.get("finished_at") and job.get("started_at"):
        seconds = _seconds_between(job["started_at"], job["finished_at"])
        facts.append(f"ran {seconds:.1f} s")
    if job.get("owner"):
        facts.append(f"by {job['owner']}")
    if job.get("attempts", 0) > 1:
        facts.append(f"{job['attempts']} attempts")
    st.caption(" · ".join(facts))


def _result(job: dict[str, Any]) -> None:
    result = client.result_of(job)
    if isinstance(result, PredictionResult):
        _prediction(result)
    elif isinstance(result, BatchResult):
        _batch(job["job_id"], result)
    else:
        training_result(result)


def _prediction(result: PredictionResult) -> None:
    rows = [p.model_dump() for p in result.predictions]
    if len(rows) == 1:
        species = rows[0]["species"]
        confidence = rows[0]["probabilities"][species]
        st.success(
            f"**{species}** with {confidence:.0%} confidence ({version_link(result.model_version)})"
        )
        chart, _ = st.columns(2)
        chart.caption("Probability of each species")
        chart.altair_chart(charts.probabilities(rows[0]["probabilities"]), width="stretch")
        return
    st.success(f"{len(rows):,} rows scored with {version_link(result.model_version)}.")
    table = pd.DataFrame(
        [{"species": r["species"], **r["probabilities"]} for r in rows[:PREVIEW_ROWS]]
    )
    st.dataframe(table, hide_index=True)


def batch_headline(summary: BatchResult) -> None:
    """What a scored file came to, as the Batch and Jobs pages both open it."""
    st.success(
        f"Scored {summary.rows_scored:,} of {summary.rows_read:,} rows with model "
        f"version {summary.model_version}."
    )
    cells = st.columns(4)
    cells[0].metric("Rows scored", f"{summary.rows_scored:,}")
    cells[1].metric("Rows rejected", f"{summary.rows_rejected:,}")
    cells[2].metric("Model version", summary.model_version)
    label = summary.label_column
    cells[3].metric(
        f"Accuracy vs '{label}'" if label else "Accuracy",
        percent(summary.accuracy),
        help=None if label else "The file has no species column to compare with.",
    )


def _batch(job_id: str, summary: BatchResult) -> None:
    batch_headline(summary)
    chart, _ = st.columns(2)
    chart.caption("Rows per predicted species")
    chart.altair_chart(charts.counts(summary.counts.model_dump()), width="stretch")
    # Fetched only on a click: a scored file can be hundreds of megabytes.
    downloads = st.container(horizontal=True)
    downloads.download_button(
        "Download the scored CSV",
        data=client.batch_file_later(job_id, "result"),
        file_name=f"irisq-{job_id}-result.csv",
        mime="text/csv",
        type="primary",
        on_click="ignore",
        key="jobs.download",
    )
    if summary.rows_rejected:
        downloads.download_button(
            "Download the skipped rows",
            data=client.batch_file_later(job_id, "errors"),
            file_name=f"irisq-{job_id}-errors.csv",
            mime="text/csv",
            on_click="ignore",
            key="jobs.download_errors",
        )


def training_result(result: TrainingResult) -> None:
    """A training's verdict, metrics, confusion matrix and run, as the Train and Jobs pages
    both show it."""
    version = result.model_version
    if result.promoted:
        st.success(f"Version {version} became the champion: {result.reason}.")
    elif result.as_challenger:
        st.info(f"Version {version} is the challenger: {result.reason}.")
    else:
        st.info(f"Version {version} was registered but not promoted: {result.reason}.")
    metrics = result.metrics  # as the worker logged them; read leniently, never assumed
    cells = st.columns(3)
    cells[0].metric("Test accuracy", percent(metrics.get("accuracy")))
    cells[1].metric("Macro F1", f"{metrics.get('f1_macro', float('nan')):.3f}")
    previous = result.previous_champion
    cells[2].metric(
        "Champion before",
        f"{previous.accuracy:.1%}" if previous else "none",
        help=f"version {previous.version}" if previous else None,
    )
    left, right = st.columns(2)
    with left:
        st.caption("Confusion matrix on the 45 test flowers")
        st.altair_chart(charts.confusion(result.confusion_matrix.model_dump()), width="stretch")
    per_species = {
        species: {
            "precision": metrics.get(f"precision_{species}"),
            "recall": metrics.get(f"recall_{species}"),
        }
        for species in result.confusion_matrix.labels
    }
    with right:
        st.caption("Per species")
        table = pd.DataFrame(per_species).T
        st.dataframe(table.style.format("{:.1%}", na_rep="–"))
    st.link_button("Open this run in MLflow", result.run_url)


def _stopped(job: dict[str, Any]) -> None:
    error = job.get("error") or {}
    message = error.get("message", "no reason given")
    if job["status"] == "canceled":  # the message says by whom: "canceled by alice"
        st.info(f"{message[:1].upper()}{message[1:]}.")
        return
    st.error(f"Failed: {message}")
    if error.get("details"):
        st.dataframe(pd.DataFrame(error["details"]), hide_index=True)


def _cancel(job_id: str) -> None:
    cancel_and_note(job_id, NOTE)


def _delete(job_id: str) -> None:
    delete_and_note(job_id, NOTE, f"Job {job_id} was deleted.", close)


def _when(stamp: str) -> str:
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
