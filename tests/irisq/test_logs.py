"""The log formats: JSON lines name the job they are about."""

from __future__ import annotations

import json
import logging

from irisq.logs import JsonFormatter, job_context, job_id_of


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("irisq.test", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_has_the_fields_and_the_job_of_the_context() -> None:
    with job_context("job-1"):
        line = json.loads(JsonFormatter("worker").format(_record()))

    assert line["message"] == "hello you"
    assert (line["level"], line["service"], line["job_id"]) == ("info", "worker", "job-1")


def test_the_job_id_comes_from_extra_or_from_celery_lines() -> None:
    assert job_id_of(_record(job_id="job-2")) == "job-2"
    assert job_id_of(_record(data={"id": "job-3", "name": "irisq.predict"})) == "job-3"
    assert job_id_of(_record()) is None
