"""Logging for every service: readable text locally, one JSON object a line in containers.

A line about a job carries its `job_id`: set explicitly (`extra={"job_id": ...}`), taken
from the job being run (`job_context`), or from Celery's own task lines, whose task id *is*
the job id (irisq.queueing sends each task under its job's id).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

current_job: ContextVar[str | None] = ContextVar("irisq_job_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Every line logged inside names `job_id`."""
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


def job_id_of(record: logging.LogRecord) -> str | None:
    explicit = getattr(record, "job_id", None)
    if explicit:
        return str(explicit)
    celery_context = getattr(record, "data", None)  # Celery's received/succeeded lines
    if isinstance(celery_context, dict) and celery_context.get("id"):
        return str(celery_context["id"])
    return current_job.get()


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "service", "logger", "message", "job_id"?, "error"?}` per line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        job_id = job_id_of(record)
        if job_id:
            line["job_id"] = job_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _TextWithJob(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        job_id = job_id_of(record)
        return f"{text} [job {job_id}]" if job_id and job_id not in text else text


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure` installs."""


def configure(service: str, style: Literal["text", "json"], level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's and Celery's included) to stdout in `style`."""
    handler = _StdoutHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service) if style == "json" else _TextWithJob(TEXT_FORMAT))
    root = logging.getLogger()
    # Replaces an earlier call's handler (tests build many apps in one process); keeps any
    # other, such as pytest's log capture.
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _StdoutHandler)] + [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "celery", "celery.task"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn writes its access line only to a logger with a handler: none, since the API
    # keeps its own access log (api.access_log).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    # A line per HTTP call the services make (MLflow's registry, callbacks): their own
    # lines say what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
