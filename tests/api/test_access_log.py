"""The API's access log: a summary per window and the refusals, never a line per request."""

from __future__ import annotations

import asyncio
import logging

import pytest

from api.access_log import NOTED_PER_WINDOW, AccessLog


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "irisq.access"]


def test_a_window_of_successes_is_one_summary_line(caplog: pytest.LogCaptureFixture) -> None:
    async def traffic() -> None:
        log = AccessLog("summary")
        for i in range(1000):
            log.note("POST", b"/v1/predictions", "10.0.0.1", 200, (i % 100 + 1) / 1000)
        assert _lines(caplog) == []  # nothing per request
        log.flush()

    with caplog.at_level(logging.INFO, "irisq.access"):
        asyncio.run(traffic())

    (summary,) = _lines(caplog)
    assert summary.startswith("1,000 requests in the last 10 s (200: 1,000)")
    assert "p50 50.0 ms, p99 99.0 ms" in summary


def test_refusals_are_logged_one_by_one_up_to_a_cap(caplog: pytest.LogCaptureFixture) -> None:
    async def flood() -> None:
        log = AccessLog("summary")
        log.note("GET", b"/v1/jobs/x", "10.0.0.2", 500, 0.002)
        for _ in range(500):
            log.note("POST", b"/v1/predictions", "10.0.0.2", 429, 0.001)
        log.flush()

    with caplog.at_level(logging.INFO, "irisq.access"):
        asyncio.run(flood())

    lines = _lines(caplog)
    assert len(lines) == NOTED_PER_WINDOW + 1  # the capped refusals, then the summary
    assert lines[0] == '10.0.0.2 "GET /v1/jobs/x" 500 2.0 ms'
    failed = [r for r in caplog.records if r.name == "irisq.access" and r.levelno >= 30]
    assert [r.getMessage() for r in failed] == [lines[0]]  # a 5xx is a warning, a 4xx is not
    assert "(429: 500, 500: 1)" in lines[-1]
    assert f"{501 - NOTED_PER_WINDOW:,} more refused or failed" in lines[-1]


def test_a_path_cannot_forge_a_line(caplog: pytest.LogCaptureFixture) -> None:
    async def forged() -> None:
        AccessLog("summary").note("GET", b"/x%0A\n" + b"a" * 5000, "10.0.0.3", 404, 0.001)

    with caplog.at_level(logging.INFO, "irisq.access"):
        asyncio.run(forged())

    (line,) = _lines(caplog)
    assert "\n" not in line
    assert line.startswith('10.0.0.3 "GET /x%0A\\naaa')
    assert len(line) < 300


@pytest.mark.parametrize(("mode", "expected"), [("all", 3), ("off", 0)])
def test_all_and_off(caplog: pytest.LogCaptureFixture, mode: str, expected: int) -> None:
    async def three() -> None:
        log = AccessLog(mode)  # type: ignore[arg-type]
        for _ in range(3):
            log.note("GET", b"/healthz", "10.0.0.4", 200, 0.001)

    with caplog.at_level(logging.INFO, "irisq.access"):
        asyncio.run(three())

    assert len(_lines(caplog)) == expected
