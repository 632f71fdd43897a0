"""The API faked at the HTTP boundary (respx), so the pages' own logic is what is tested."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from streamlit.testing.v1 import AppTest

API = "http://api.test"
APP = str(Path(__file__).resolve().parents[2] / "frontend" / "app.py")
READY = {"ready": True, "auth": "open", "checks": {"redis": {"ok": True, "detail": "reachable"}}}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    from irisq.settings import get_settings

    monkeypatch.setenv("IRISQ_API_URL", API)
    get_settings.cache_clear()
    with respx.mock(base_url=API, assert_all_called=False) as router:
        router.get("/readyz").respond(200, json=READY)
        # A version's run, for the link each shown prediction puts on its model version.
        router.get(url__regex=r"/v1/models/[0-9]+$").respond(
            200, json={"run_url": "http://mlflow.test/#/runs/the-run"}
        )
        yield router
    get_settings.cache_clear()


def job(job_id: str, kind: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "kind": kind,
        "status": status,
        "progress": 1.0,
        "stage": None,
        "result": None,
        "error": None,
        "created_at": "2026-11-26T10:00:00.000001Z",
        "started_at": None,
        "finished_at": None,
        "attempts": 1,
        "owner": "anonymous",
        **fields,
    }


def sse(*events: tuple[str, dict[str, Any], str | None], retry_ms: int | None = 10) -> bytes:
    """A job's event stream as the API writes it: (event name, data, id) each."""
    text = f"retry: {retry_ms}\n\n" if retry_ms is not None else ""
    for name, data, event_id in events:
        head = f"id: {event_id}\n" if event_id else ""
        text += f"{head}event: {name}\ndata: {json.dumps(data)}\n\n"
    return text.encode()


def progress(job_id: str, value: float, stage: str, event_id: str) -> tuple[str, Any, str]:
    data = {"job_id": job_id, "status": "running", "progress": value, "stage": stage}
    return ("progress", data, event_id)


def ended(finished: dict[str, Any]) -> tuple[str, dict[str, Any], None]:
    """The `status` event: the whole job, as GET /v1/jobs/{id} returns it."""
    return ("status", finished, None)


def stream(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"Content-Type": "text/event-stream"})


def labels(page: AppTest, element_type: str) -> list[str]:
    """The labels of the page's elements of a type AppTest has no accessor for (page_link,
    download_button)."""
    return [str(getattr(element, "label", "")) for element in page.get(element_type)]
