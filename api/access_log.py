"""What operators read about requests, at a cost that does not grow with the traffic.

uvicorn's access log writes a line per request: at a thousand requests a second that is a
thousand lines through the log pipe (under `make run`, through honcho too), about a tenth of
the API's CPU and as much again in the process that prints them, and nobody reads them.
irisq turns it off (irisq.logs.configure) and logs here instead, by `IRISQ_ACCESS_LOG`:

- `summary` (default): one line per 10 s that saw requests (how many, by status, latency
  p50/p99), and a line for each refused or failed request (4xx at INFO, 5xx at WARNING), at
  most `NOTED_PER_WINDOW` of them per window: a flood of refusals is counted, not written
  one by one (logging every 429 of an attack would be the attack's amplifier).
- `all`: a line per request, as uvicorn's access log would write it.
- `off`: nothing (a proxy in front keeps the access log).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

logger = logging.getLogger("irisq.access")

AccessLogMode = Literal["summary", "all", "off"]
WINDOW_SECONDS = 10.0
NOTED_PER_WINDOW = 20
# A path as sent (still percent-encoded: a %0A cannot start a forged line), cut to this.
PATH_MAX_CHARS = 200
# Latencies kept per window to estimate p50/p99: a uniform sample (reservoir) of them, so
# memory stays the same at any traffic.
SAMPLE_SIZE = 4096


@dataclass
class _Window:
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: list[float] = field(default_factory=list)
    seen: int = 0
    noted: int = 0  # refusals and failures logged one by one so far

    def add(self, status: int, seconds: float) -> None:
        self.statuses[status] += 1
        self.seen += 1
        if len(self.seconds) < SAMPLE_SIZE:
            self.seconds.append(seconds)
        elif (slot := random.randrange(self.seen)) < SAMPLE_SIZE:
            self.seconds[slot] = seconds

    def summary(self) -> str:
        by_status = ", ".join(f"{status}: {n:,}" for status, n in sorted(self.statuses.items()))
        ordered = sorted(self.seconds)
        p50, p99 = (ordered[int(q * (len(ordered) - 1))] * 1000 for q in (0.5, 0.99))
        return (
            f"{self.seen:,} requests in the last {WINDOW_SECONDS:g} s ({by_status}); "
            f"latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )


class AccessLog:
    """Told of every answered request by the request timer (api.metrics)."""

    def __init__(self, mode: AccessLogMode) -> None:
        self.mode = mode
        self._window = _Window()
        self._flush: asyncio.TimerHandle | None = None

    def note(self, method: str, raw_path: bytes, client: str, status: int, seconds: float) -> None:
        if self.mode == "off":
            return
        # Control and non-ASCII bytes escaped (\n, \xff): a path cannot end the line.
        path = raw_path[:PATH_MAX_CHARS].decode("latin-1").encode("unicode_escape").decode()
        line = f'{client} "{method} {path}" {status} {seconds * 1000:.1f} ms'
        if self.mode == "all":
            logger.info(line)
            return
        window = self._window
        window.add(status, seconds)
        if status >= 400 and window.noted < NOTED_PER_WINDOW:
            window.noted += 1
            logger.log(logging.WARNING if status >= 500 else logging.INFO, line)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(WINDOW_SECONDS, self.flush)

    def flush(self) -> None:
        """Log the window's summary and start a new window."""
        window, self._window, self._flush = self._window, _Window(), None
        if window.seen:
            unnoted = sum(n for s, n in window.statuses.items() if s >= 400) - window.noted
            more = f"; {unnoted:,} more refused or failed, not logged one by one" if unnoted else ""
            logger.info(window.summary() + more)
