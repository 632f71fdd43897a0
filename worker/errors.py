"""The errors a job may end with that say something about its request, its model or the
registry: shown to the client as they are (type and message), unlike internal errors."""

from __future__ import annotations

from typing import Any


class ExpectedJobError(Exception):
    """Subclasses name their `error_type`; `details` may itemise the problem."""

    error_type = "job_failed"
    details: list[dict[str, Any]] | None = None
