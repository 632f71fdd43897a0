"""Score a CSV file: upload, follow the job's progress, preview and download the result."""

from __future__ import annotations

import io
import math
from typing import Any

import pandas as pd
import streamlit as st

from frontend import charts, client, job_view
from frontend.status import cancel_and_note, delete_and_note, follow, job_link, show_note
from irisq.job_types import BatchResult
from irisq.settings import get_settings

DEADLINE_SECONDS = 30 * 60
PREVIEW_ROWS = 200
NOTE = "batch.message"


def _upload(file: Any, on_invalid: str) -> None:
    try:
        accepted = client.upload_batch(file.getvalue(), file.name, on_invalid)
    except client.ApiError as exc:
        st.session_state["batch.refused"] = str(exc)
        return
    st.session_state["batch.refused"] = None
    st.session_state["batch.job_id"] = accepted["job_id"]
    st.query_params["batch"] = accepted["job_id"]  # a refresh of the page finds it again
    st.session_state["batch.files"] = {}


def _file(job_id: str, which: str) -> bytes:
    """Fetched once per job and kept, so reruns of the page do not download it again."""
    files: dict[str, bytes] = st.session_state["batch.files"]
    if which not in files:
        files[which] = client.batch_file(job_id, which)
    return files[which]


def _show(job: dict[str, Any]) -> None:
    summary = client.result_of(job)
    job_id = job["job_id"]
    if not isinstance(summary, BatchResult):  # an id of another kind put in the URL
        st.warning(f"Job {job_id} is not a batch.")
        return
    job_view.batch_headline(summary)
    try:
        result = _file(job_id, "result")
        errors = _file(job_id, "errors") if summary.rows_rejected else None
    except client.ApiError as exc:
        st.error(str(exc))
        return
    left, right = st.columns([1, 2])
    with left:
        st.caption("Rows per predicted species")
        st.altair_chart(charts.counts(summary.counts.model_dump()), width="stretch")
    with right:
        st.caption(f"First {PREVIEW_ROWS} rows of the result")
        preview = pd.read_csv(
            io.BytesIO(result),
            nrows=PREVIEW_ROWS,
            dtype=str,
            sep=summary.delimiter,
            encoding="utf-8-sig",
            header=0,
        )
        st.dataframe(preview, hide_index=True, height=min(36 * (len(preview) + 1) + 2, 400))
    st.download_button(
        "Download the scored CSV",
        data=result,
        file_name=f"irisq-{job_id}-result.csv",
        mime="text/csv",
        type="primary",
        key="batch.download",
    )
    if errors:
        st.warning(f"{summary.rows_rejected:,} rows were left out; the file lists why.")
        st.download_button(
            "Download the skipped rows",
            data=errors,
            file_name=f"irisq-{job_id}-errors.csv",
            mime="text/csv",
            key="batch.download_errors",
        )
    st.button(
        "Delete this job and its files",
        key="batch.delete",
        on_click=_delete,
        args=(job_id,),
        help="The upload, the scored file and the job's record go now, for good.",
    )


def _cancel(job_id: str) -> None:
    cancel_and_note(job_id, NOTE)


def _forget_the_job() -> None:
    st.session_state["batch.job_id"] = None
    st.query_params.pop("batch", None)
    st.session_state["batch.files"] = {}


def _delete(job_id: str) -> None:
    delete_and_note(job_id, NOTE, "The job and its files were deleted.", _forget_the_job)


def _failed(job: dict[str, Any]) -> None:
    error = job["error"] or {}
    if job["status"] == "canceled":
        st.info("The job was canceled: nothing was scored, and its files are gone.")
        return
    st.error(f"The file was not scored: {error.get('message', 'unknown error')}")
    details = error.get("details")
    if details:
        st.dataframe(pd.DataFrame(details), hide_index=True)


st.session_state.setdefault("batch.job_id", st.query_params.get("batch"))
st.session_state.setdefault("batch.refused", None)
st.session_state.setdefault("batch.files", {})
st.title("Score a CSV file")
limit_mb = max(1, math.floor(get_settings().batch_max_bytes / (1024 * 1024)))
st.write(
    "One flower per row, with columns for sepal length, sepal width, petal length and "
    "petal width in cm (`sepal_length`, `Sepal.Length`, `SepalLengthCm`… all work). "
    "Commas or semicolons, decimal points or commas. Other columns are kept in the result."
)
uploaded = st.file_uploader(
    "CSV file", type=["csv", "txt"], key="batch.file", max_upload_size=limit_mb
)
on_invalid = st.radio(
    "When a row is invalid",
    ["reject", "skip"],
    format_func=lambda v: {"reject": "refuse the whole file", "skip": "skip the row"}[v],
    horizontal=True,
    key="batch.on_invalid",
)
if st.button("Score file", type="primary", key="batch.submit", disabled=uploaded is None):
    _upload(uploaded, on_invalid)
show_note(NOTE)
if st.session_state["batch.refused"]:
    st.error(st.session_state["batch.refused"])
elif st.session_state["batch.job_id"]:
    running = st.session_state["batch.job_id"]
    job_link(running)
    cancel = st.empty()  # shown while the job runs; a click stops it (and reruns the page)
    cancel.button("Cancel", key="batch.cancel", on_click=_cancel, args=(running,))
    finished = follow(
        running,
        DEADLINE_SECONDS,
        "The file is still being scored; come back to this page to follow it.",
    )
    if finished is not None:
        cancel.empty()
    if finished and finished["status"] == "succeeded":
        _show(finished)
    elif finished and finished["status"] in ("failed", "canceled"):
        _failed(finished)
