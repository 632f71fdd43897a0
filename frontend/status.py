"""Small helpers shared by the pages: how a job's status reads, and following a running job."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Literal

import streamlit as st

from frontend import client

# How often the page looks up from a quiet job to let Streamlit stop this run (a click on
# Cancel, another page): the events arrive on a thread of their own, as they come.
TICK_SECONDS = 0.2
JOBS_PAGE = "views/jobs.py"  # as st.page_link names it: relative to frontend/app.py


# A note for the page's next run, left by a button's callback: which `st` call shows it, what
# it says. Callbacks run before the page, which shows and forgets it (`show_note`).
Tone = Literal["success", "info", "warning", "error"]


def leave_note(key: str, tone: Tone, text: str) -> None:
    st.session_state[key] = (tone, text)


def show_note(key: str) -> None:
    if note := st.session_state.pop(key, None):
        getattr(st, note[0])(note[1])


def cancel_and_note(job_id: str, note_key: str) -> None:
    """A Cancel button's callback: cancel the job; one that ended meanwhile (409) is noted,
    and the page shows how it ended."""
    try:
        client.cancel_job(job_id)
    except client.ApiError as exc:
        leave_note(note_key, "warning", str(exc))


def delete_and_note(job_id: str, note_key: str, done: str, forget: Callable[[], None]) -> None:
    """A Delete button's callback: delete the job, then `forget` it on the page."""
    try:
        client.delete_job(job_id)
    except client.ApiError as exc:
        leave_note(note_key, "error", str(exc))
        return
    forget()
    leave_note(note_key, "success", done)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def job_link(job_id: str) -> None:
    """A link to the job on the Jobs page (which keeps it open across a refresh)."""
    st.page_link(
        JOBS_PAGE,
        label=f"Job {job_id} on the Jobs page",
        icon=":material/history:",
        query_params={"job": job_id},
    )


@st.cache_data(ttl=60, show_spinner=False)
def _run_url(version: str) -> str | None:
    try:
        url = client.model_version(version).get("run_url")
    except client.ApiError:  # the registry away: the version is shown without its link
        return None
    return url if isinstance(url, str) else None


def version_link(version: str) -> str:
    """`model version N` as Markdown, linked to the run that trained it in MLflow."""
    url = _run_url(version)
    return f"[model version {version}]({url})" if url else f"model version {version}"


def progress_text(update: dict[str, Any]) -> str:
    stage = (update.get("stage") or update["status"] or "queued").replace("_", " ")
    return f"{stage} — {update['progress']:.0%}"


def follow(job_id: str, deadline_seconds: float, late: str) -> dict[str, Any] | None:
    """A progress bar that follows the job's event stream until the job ends; the final job,
    or None when the API fails or the deadline passes (`late` then says what to do).

    The stream is read on a thread of its own: blocked on a quiet stream (a queued job sends
    a keep-alive every 15 s), this run could not be stopped by a click (Cancel, another
    page), which Streamlit only acts on when the script touches it. So the page's thread
    waits for the events a tick at a time, touching Streamlit in between.
    """
    bar = st.progress(0.0, text="waiting for the job…")
    updates: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
    stop = threading.Event()
    headers = client.auth_headers()  # read here: the session is not readable off this thread

    def read() -> None:
        try:
            ended = client.follow_job(
                job_id, lambda p: updates.put(("progress", p)), deadline_seconds, stop, headers
            )
            updates.put(("ended", ended))
        except Exception as exc:  # handed to the page, which says it (or re-raises a bug)
            updates.put(("failed", exc))

    threading.Thread(target=read, name=f"irisq-follow-{job_id}", daemon=True).start()
    try:
        what, value = _next(updates)
        while what == "progress":
            bar.progress(min(1.0, value["progress"]), text=progress_text(value))
            what, value = _next(updates)
    finally:
        stop.set()  # the reader stops at its next line (a keep-alive at the latest)
    bar.empty()
    if isinstance(value, client.JobDeletedError):
        st.warning(str(value))
    elif isinstance(value, client.ApiError):
        st.error(str(value))
    elif isinstance(value, Exception):
        raise value  # a bug: not to be dressed up as the API's fault
    elif value is None:
        st.warning(late)
    return value if what == "ended" else None


def _next(updates: queue.SimpleQueue[tuple[str, Any]]) -> tuple[str, Any]:
    """The reader's next word, skipping progress that newer news already replaces."""
    while True:
        try:
            item = updates.get(timeout=TICK_SECONDS)
        except queue.Empty:
            _ = "_" in st.session_state  # a point where Streamlit may stop this run
            continue
        if item[0] != "progress" or updates.empty():
            return item
