"""Small helpers shared by the pages."""

from __future__ import annotations

from typing import Any, Literal


def status_state(job: dict[str, Any]) -> Literal["running", "complete", "error"]:
    """The `st.status` state that shows a job's status."""
    if job["status"] == "succeeded":
        return "complete"
    return "error" if job["status"] in ("failed", "canceled") else "running"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
