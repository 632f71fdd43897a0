"""A real HTTP receiver of callbacks for the tests, and the verification docs/webhooks.md shows.

The receiver is a threaded `http.server` on a port of its own in the test process. It
answers with the statuses it is given, in order, then 204, and keeps every request it got.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.processes import ROOT

Verify = Callable[[str, Any, bytes], bool]


def documented_verify() -> Verify:
    """The `verify` function of docs/webhooks.md, run as written there."""
    text = (ROOT / "docs" / "webhooks.md").read_text()
    found = re.search(r"<!-- verify:[^>]*-->\n```python\n(.*?)```", text, re.DOTALL)
    assert found, "docs/webhooks.md has no verification example after its `verify` marker"
    lines = [line for line in found[1].splitlines() if line.strip()]
    assert len(lines) <= 10, "the example grew past 10 lines"
    namespace: dict[str, Any] = {}
    exec(found[1], namespace)  # our own documentation, under test
    verify: Verify = namespace["verify"]
    return verify


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int
    at: float  # time.time() when it arrived


class Receiver:
    def __init__(self, port: int, statuses: list[int]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._statuses = list(statuses)
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def _next_status(self) -> int:
        with self._lock:
            return self._statuses.pop(0) if self._statuses else 204

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)


@contextmanager
def receiving(port: int, statuses: list[int] | None = None) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1:`port` until the block ends."""
    receiver = Receiver(port, statuses or [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            status = receiver._next_status()
            headers = {name.lower(): value for name, value in self.headers.items()}
            receiver._record(Delivery(self.path, headers, body, status, time.time()))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the test reads `deliveries`

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
