"""Recent jobs: this key's (an admin's: everyone's), newest first, and one opened from the
table. The opened job's id is in the URL (`?job=`), so a refresh, a bookmark or a link from
another page opens it again.

The table is read afresh on every run of the page, the newest `jobs.shown` rows following
`next_cursor` as far as needed; "Older jobs" shows more. A cursor kept from an earlier run
would leave a gap as new jobs push the first page down, and the table is cheap to read.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend import client, job_view
from frontend.status import show_note

PAGE_SIZE = 20
MAX_REQUESTS = 10  # listing calls per run, for filters that make pages short
KINDS = {"": "all kinds", "prediction": "predictions", "batch": "batches", "training": "trainings"}
STATUSES = ["", "queued", "running", "succeeded", "failed", "canceled"]
TABLE = "jobs.table"


def _recent(kind: str, status: str, wanted: int) -> tuple[list[dict[str, Any]], bool]:
    """The newest `wanted` jobs matching the filters, and whether there are older ones."""
    jobs: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_REQUESTS):
        page = client.list_jobs(
            kind or None, status or None, limit=min(200, wanted - len(jobs)), cursor=cursor
        )
        jobs += page["jobs"]
        cursor = page["next_cursor"]
        if cursor is None or len(jobs) >= wanted:
            break
    return jobs, cursor is not None


def _table(jobs: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        {
            "created": pd.Timestamp(job["created_at"]).tz_convert(None),
            "kind": job["kind"],
            "status": job["status"],
            "progress": job["progress"],
            "stage": (job.get("stage") or "").replace("_", " "),
            "owner": job.get("owner") or "",
            "job id": job["job_id"],
        }
        for job in jobs
    ]
    table = pd.DataFrame(
        rows, columns=["created", "kind", "status", "progress", "stage", "owner", "job id"]
    )
    owners = table["owner"][table["owner"] != ""]  # none: the service's own (first model)
    if owners.nunique() <= 1:  # one person's jobs: no need to say whose
        table = table.drop(columns="owner")
    return table


def _opened_from_table() -> None:
    """A row selected: its job opens (and its id goes into the URL); deselected: it closes."""
    rows = st.session_state[TABLE]["selection"]["rows"]
    listed: list[str] = st.session_state["jobs.listed"]
    if rows and rows[0] < len(listed):
        st.query_params["job"] = listed[rows[0]]
    else:
        job_view.close()


def _filters_changed() -> None:
    st.session_state["jobs.shown"] = PAGE_SIZE


def _older() -> None:
    st.session_state["jobs.shown"] += PAGE_SIZE


st.session_state.setdefault("jobs.shown", PAGE_SIZE)
st.title("Jobs")
kind_cell, status_cell, refresh_cell = st.columns([2, 2, 1], vertical_alignment="bottom")
kind = kind_cell.selectbox(
    "Kind",
    list(KINDS),
    format_func=KINDS.__getitem__,
    key="jobs.kind",
    on_change=_filters_changed,
)
status = status_cell.selectbox(
    "Status",
    STATUSES,
    format_func=lambda s: s or "any status",
    key="jobs.status",
    on_change=_filters_changed,
)
refresh_cell.button("Refresh", key="jobs.refresh", icon=":material/refresh:")
try:
    jobs, older = _recent(kind, status, st.session_state["jobs.shown"])
except client.ApiError as exc:
    st.error(str(exc))
    jobs, older = [], False
opened = st.query_params.get("job")
listed = [job["job_id"] for job in jobs]
st.session_state["jobs.listed"] = listed  # what a selection's row number means
# The selection follows the opened job, not a row number: new jobs move the rows down.
st.session_state[TABLE] = {
    "selection": {"rows": [listed.index(opened)] if opened in listed else [], "columns": []}
}
if jobs:
    st.dataframe(
        _table(jobs),
        key=TABLE,
        on_select=_opened_from_table,
        selection_mode="single-row",
        hide_index=True,
        column_config={
            "created": st.column_config.DatetimeColumn(
                "created (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "progress": st.column_config.ProgressColumn(
                format="percent", min_value=0.0, max_value=1.0
            ),
        },
    )
    st.caption("Select a row to open its job.")
elif not opened:
    st.info("No jobs yet" + (" with these filters." if kind or status else "."))
if older:
    st.button("Older jobs", key="jobs.older", on_click=_older)
show_note(job_view.NOTE)
if opened:
    st.divider()
    job_view.show(opened)
