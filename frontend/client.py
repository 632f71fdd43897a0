"""The frontend's only door to irisq: HTTP calls to the API, with errors in plain words."""

from __future__ import annotations

import time
from typing import Any

import httpx

from frontend import session
from irisq.job_types import RESULT, JobResult
from irisq.settings import get_settings

FINAL = {"succeeded", "failed", "canceled"}
REQUEST_TIMEOUT_SECONDS = 10.0


class ApiError(Exception):
    """The API refused a request or could not be reached; `str()` is fit to show a person."""


def base_url() -> str:
    return get_settings().api_url.rstrip("/")


def auth_headers(key: str | None = None) -> dict[str, str]:
    """The signed-in person's API key (the frontend has none of its own)."""
    key = key or session.api_key()
    return {"Authorization": f"Bearer {key}"} if key else {}


def _request(method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
    try:
        response = httpx.request(
            method,
            base_url() + path,
            timeout=REQUEST_TIMEOUT_SECONDS,
            headers=auth_headers(key),
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


def submit_prediction(row: dict[str, float], model: str = "champion") -> dict[str, Any]:
    """Queue one flower; the answer holds the job id."""
    return _json("POST", "/v1/predictions", json={"rows": [row], "model": model})


def upload_batch(content: bytes, filename: str, on_invalid: str) -> dict[str, Any]:
    """Queue a CSV file for scoring; the answer holds the job id."""
    return _json(
        "POST",
        "/v1/batches",
        params={"on_invalid": on_invalid},
        files={"file": (filename, content, "text/csv")},
    )


def batch_file(job_id: str, which: str) -> bytes:
    """The `result` or `errors` CSV of a finished batch."""
    response = _request("GET", f"/v1/batches/{job_id}/{which}")
    _raise_for_problem(response)
    return response.content


def submit_training(algorithm: str, params: dict[str, Any]) -> dict[str, Any]:
    return _json("POST", "/v1/training", json={"algorithm": algorithm, "params": params})


def whoami(key: str | None) -> dict[str, Any]:
    """The API's account of `key` (name, role); ApiError when it is not a valid key."""
    return _json("GET", "/v1/me", key=key)


def promote(version: str) -> dict[str, Any]:
    """Make `version` the champion (admin keys)."""
    return _json("POST", f"/v1/models/{version}/promote")


def list_models() -> dict[str, Any]:
    return _json("GET", "/v1/models")


def get_job(job_id: str) -> dict[str, Any]:
    return _json("GET", f"/v1/jobs/{job_id}")


def result_of(job: dict[str, Any]) -> JobResult:
    """A succeeded job's result, typed by its kind (irisq.job_types, as the worker wrote it)."""
    return RESULT.validate_python(job["result"])


def cancel_job(job_id: str) -> dict[str, Any]:
    """Stop a queued or running job; it stays readable, `canceled`."""
    return _json("POST", f"/v1/jobs/{job_id}/cancel")


def delete_job(job_id: str) -> None:
    """Delete a job with its result and files, for good."""
    _raise_for_problem(_request("DELETE", f"/v1/jobs/{job_id}"))


def wait_for_job(
    job_id: str,
    deadline_seconds: float = 60.0,
    every_seconds: float = 0.25,
    on_update: Any = None,
) -> dict[str, Any]:
    """Poll the job until it is final or the deadline passes (then the last state is returned)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        job = get_job(job_id)
        if on_update is not None:
            on_update(job)
        if job["status"] in FINAL or time.monotonic() >= deadline:
            return job
        time.sleep(every_seconds)


def readiness() -> dict[str, Any]:
    """The API's /readyz body (ready or not); raises ApiError only when it is unreachable."""
    response = _request("GET", "/readyz")
    try:
        return dict(response.json())
    except ValueError as exc:
        raise ApiError(f"The API answered /readyz with {response.status_code}.") from exc
