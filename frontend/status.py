"""Small helpers shared by the pages."""

from __future__ import annotations

import time
from typing import Any, Literal

import streamlit as st

from frontend import client


def status_state(job: dict[str, Any]) -> Literal["running", "complete", "error"]:
    """The `st.status` state that shows a job's status."""
    if job["status"] == "succeeded":
        return "complete"
    return "error" if job["status"] in ("failed", "canceled") else "running"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def follow(job_id: str, deadline_seconds: float, every_seconds: float, late: str) -> Any:
    """Poll a job with a progress bar (its stage and progress) until it is final; the job,
    or None when the API fails or the deadline passes (`late` then says what to do)."""
    bar = st.progress(0.0, text="queued")
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            job = client.get_job(job_id)
        except client.ApiError as exc:
            st.error(str(exc))
            return None
        stage = (job.get("stage") or job["status"]).replace("_", " ")
        bar.progress(job["progress"], text=f"{stage} — {job['progress']:.0%}")
        if job["status"] in client.FINAL:
            bar.empty()
            return job
        if time.monotonic() > deadline:
            st.warning(late)
            return None
        time.sleep(every_seconds)
