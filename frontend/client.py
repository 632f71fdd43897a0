"""The frontend's only door to irisq: HTTP calls to the API, with errors in plain words.

Functions run on the page's thread, where the signed-in person's key is read from the
session; those that may run on another thread (following a job, a deferred download) take
the `headers` read beforehand on the page's thread, since Streamlit's session state is not
readable elsewhere.

A little past the ~250 lines we aim for: one function per API call the pages make, kept
together so the pages never build a URL or read an error body themselves.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx

from frontend import session
from frontend.sse import Event, EventParser
from irisq.job_types import RESULT, JobResult
from irisq.settings import get_settings

FINAL = {"succeeded", "failed", "canceled"}
REQUEST_TIMEOUT_SECONDS = 10.0
# The API writes a keep-alive comment every 15 s (IRISQ_EVENTS_HEARTBEAT_SECONDS) on a quiet
# stream: three missed in a row mean a dead connection, so it is dropped and resumed.
EVENTS_READ_TIMEOUT_SECONDS = 45.0
EVENTS_CONNECT_ATTEMPTS = 3  # failed connections in a row before following gives up
EVENTS_RETRY_SECONDS = 2.0  # between reconnections, until the stream's `retry:` says otherwise


class ApiError(Exception):
    """The API refused a request or could not be reached; `str()` is fit to show a person."""


class JobDeletedError(ApiError):
    """The job followed was deleted meanwhile."""


def base_url() -> str:
    return get_settings().api_url.rstrip("/")


def auth_headers(key: str | None = None) -> dict[str, str]:
    """The signed-in person's API key (the frontend has none of its own)."""
    key = key or session.api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def _request(
    method: str,
    path: str,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = REQUEST_TIMEOUT_SECONDS,
    **kwargs: Any,
) -> httpx.Response:
    try:
        response = httpx.request(
            method,
            base_url() + path,
            timeout=timeout,
            headers=auth_headers(key) if headers is None else headers,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        raise ApiError(f"The irisq API at {base_url()} cannot be reached ({exc}).") from exc
    return response


def _raise_for_problem(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        message = body.get("detail") or body.get("title") or response.text
    except ValueError:
        message = response.text or response.reason_phrase
    raise ApiError(f"The API refused the request ({response.status_code}): {message}")


def _json(method: str, path: str, key: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The JSON answer of a request; ApiError when the API refused it or cannot be reached."""
    response = _request(method, path, key=key, **kwargs)
    _raise_for_problem(response)
    return dict(response.json())


def submit_prediction(
    row: dict[str, float], model: str = "champion", wait_seconds: float | None = None
) -> dict[str, Any]:
    """Queue one flower; the answer holds the job id. With `wait_seconds`, the API answers
    with the whole finished job if it ends within them (its status then is final)."""
    params = {} if wait_seconds is None else {"wait": wait_seconds}
    return _json(
        "POST",
        "/v1/predictions",
        params=params,
        json={"rows": [row], "model": model},
        timeout=REQUEST_TIMEOUT_SECONDS + (wait_seconds or 0.0),  # the wait is not a hang
    )


def upload_batch(content: bytes, filename: str, on_invalid: str) -> dict[str, Any]:
    """Queue a CSV file for scoring; the answer holds the job id."""
    return _json(
        "POST",
        "/v1/batches",
        params={"on_invalid": on_invalid},
        files={"file": (filename, content, "text/csv")},
    )


def batch_file(job_id: str, which: str, headers: dict[str, str] | None = None) -> bytes:
    """The `result` or `errors` CSV of a finished batch."""
    response = _request("GET", f"/v1/batches/{job_id}/{which}", headers=headers)
    _raise_for_problem(response)
    return response.content


def batch_file_later(job_id: str, which: str) -> Callable[[], bytes]:
    """`batch_file`, fetched only when called: for `st.download_button(data=...)`, which
    calls it on a thread of its own once the button is clicked."""
    headers = auth_headers()
    return lambda: batch_file(job_id, which, headers)


def submit_training(
    algorithm: str, params: dict[str, Any], challenger: bool = False
) -> dict[str, Any]:
    """Train; `challenger`: register the version as the challenger instead of gating it."""
    return _json(
        "POST",
        "/v1/training",
        params={"challenger": "true"} if challenger else None,
        json={"algorithm": algorithm, "params": params},
    )


def whoami(key: str | None) -> dict[str, Any]:
    """The API's account of `key` (name, role); ApiError when it is not a valid key."""
    return _json("GET", "/v1/me", key=key)


def promote(version: str) -> dict[str, Any]:
    """Make `version` the champion (admin keys)."""
    return _json("POST", f"/v1/models/{version}/promote")


def set_challenger(version: str) -> dict[str, Any]:
    """Shadow-score `version` beside the champion (admin keys)."""
    return _json("PUT", "/v1/models/challenger", json={"version": int(version)})


def clear_challenger() -> dict[str, Any]:
    return _json("DELETE", "/v1/models/challenger")


def list_models() -> dict[str, Any]:
    return _json("GET", "/v1/models")


def drift(since: datetime, until: datetime) -> dict[str, Any]:
    """The drift report of [since, until): computed by a train worker (it may take seconds)."""
    return _json(
        "GET",
        "/v1/monitoring/drift",
        params={"since": since.isoformat(), "until": until.isoformat()},
        timeout=45.0,
    )


def model_version(version: str) -> dict[str, Any]:
    """One registered version: its run's link, the gate's decision."""
    return _json("GET", f"/v1/models/{version}")


def get_job(job_id: str) -> dict[str, Any]:
    return _json("GET", f"/v1/jobs/{job_id}")


def list_jobs(
    kind: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """One page of this key's jobs (an admin's: everyone's), newest first, without results:
    `{"jobs": [...], "next_cursor": ...}`. A filtered page may be short and still have a
    `next_cursor`: only a null one means there are no more."""
    wanted = {"kind": kind, "status": status, "limit": limit, "cursor": cursor}
    return _json("GET", "/v1/jobs", params={k: v for k, v in wanted.items() if v is not None})


def result_of(job: dict[str, Any]) -> JobResult:
    """A succeeded job's result, typed by its kind (irisq.job_types, as the worker wrote it)."""
    return RESULT.validate_python(job["result"])


def cancel_job(job_id: str) -> dict[str, Any]:
    """Stop a queued or running job; it stays readable, `canceled`."""
    return _json("POST", f"/v1/jobs/{job_id}/cancel")


def delete_job(job_id: str) -> None:
    """Delete a job with its result and files, for good."""
    _raise_for_problem(_request("DELETE", f"/v1/jobs/{job_id}"))


def follow_job(
    job_id: str,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
    deadline_seconds: float = 60.0,
    stop: threading.Event | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Follow the job's event stream until it ends: `on_progress` gets each progress event's
    data (`job_id`, `status`, `progress`, `stage`) as the worker reports it, and the answer is
    the final job, whole. None when the deadline passes (or `stop` is set) first.

    A stream that drops or ends early is resumed after its last event (`Last-Event-ID`), so
    no progress is missed and nothing is polled. A refusal (404, 410, 429...) raises
    ApiError at once, and so does an API that cannot be reached a few times running;
    JobDeletedError when the job is deleted meanwhile."""
    deadline = time.monotonic() + deadline_seconds
    headers = auth_headers() if headers is None else headers
    parser = EventParser()
    failures = 0
    while not _stopped(stop) and time.monotonic() < deadline:
        try:
            for event in _job_events(job_id, parser, deadline, headers, stop):
                failures = 0
                if event.name == "progress" and on_progress is not None:
                    on_progress(json.loads(event.data))
                elif event.name == "status":
                    return dict(json.loads(event.data))
                elif event.name == "deleted":
                    raise JobDeletedError(f"Job {job_id} was deleted.")
        except httpx.TransportError as exc:  # refused, dropped, or silent for too long
            if time.monotonic() >= deadline or _stopped(stop):
                break
            failures += 1
            if failures >= EVENTS_CONNECT_ATTEMPTS:
                raise ApiError(f"The irisq API at {base_url()} cannot be reached ({exc}).") from exc
        retry = (parser.retry_milliseconds or EVENTS_RETRY_SECONDS * 1000) / 1000
        pause = max(0.0, min(retry, deadline - time.monotonic()))
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)
    return None


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _job_events(
    job_id: str,
    parser: EventParser,
    deadline: float,
    headers: dict[str, str],
    stop: threading.Event | None,
) -> Iterator[Event]:
    """The events of one connection to the job's stream, after the parser's last event id."""
    sent = {**headers, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if parser.last_id:
        sent["Last-Event-ID"] = parser.last_id
    # Never blocked on a read past the deadline; the keep-alives come well within the rest.
    read = max(0.1, min(EVENTS_READ_TIMEOUT_SECONDS, deadline - time.monotonic()))
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, read=read)
    url = f"{base_url()}/v1/jobs/{job_id}/events"
    with httpx.stream("GET", url, headers=sent, timeout=timeout) as response:
        if not response.is_success:
            response.read()
            _raise_for_problem(response)
        for line in response.iter_lines():
            if _stopped(stop):
                return
            event = parser.feed(line)
            if event is not None:
                yield event


def readiness() -> dict[str, Any]:
    """The API's /readyz body (ready or not); raises ApiError only when it is unreachable."""
    response = _request("GET", "/readyz")
    try:
        return dict(response.json())
    except ValueError as exc:
        raise ApiError(f"The API answered /readyz with {response.status_code}.") from exc
