"""The API faked at the HTTP boundary (respx), so the pages' own logic is what is tested."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import respx

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
        **fields,
    }
