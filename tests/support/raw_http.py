"""HTTP as an attacker writes it: raw sockets, bodies sent (or not) at the sender's pace.

HTTP clients send a whole body before they read the answer; a server that refuses early
is only seen doing so by a client that reads while it sends.
"""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx


@dataclass
class Answer:
    status: int | None  # None: the server closed without answering
    seconds: float  # from the first byte sent to the status line
    body_sent: int  # body bytes the server took before it answered
    text: str = ""


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def send_request(
    url: str,
    head: str,
    body: Iterable[bytes] = (),
    deadline_seconds: float = 30,
) -> Answer:
    """Send `head` (request line and headers, without the blank line), then `body` piece by
    piece, reading between pieces; stop as soon as the server answers or closes."""
    started = time.monotonic()
    sent = 0
    with socket.create_connection(_address(url), timeout=deadline_seconds) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n")
        for piece in body:
            if _readable(sock, 0):
                break
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += len(piece)
            if time.monotonic() - started > deadline_seconds:
                break
        answer = _read_status(sock, max(0.1, deadline_seconds - (time.monotonic() - started)))
    status, text = answer
    return Answer(status, time.monotonic() - started, sent, text)


def _readable(sock: socket.socket, timeout: float) -> bool:
    ready, _, _ = select.select([sock], [], [], timeout)
    return bool(ready)


def _read_status(sock: socket.socket, timeout: float) -> tuple[int | None, str]:
    """The status and, as far as it came, the text of the answer."""
    sock.settimeout(timeout)
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                break
            received += data
        head, _, body = received.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        sock.settimeout(2)
        while length and len(body) < int(length[1]):
            data = sock.recv(65536)
            if not data:
                break
            body += data
            received += data
    except OSError:
        pass
    if not received.startswith(b"HTTP/1.1 "):
        return None, received.decode("latin-1")
    return int(received[9:12]), received.decode("latin-1", errors="replace")


def zeros(total: int, piece: int = 1 << 20) -> Iterator[bytes]:
    """`total` bytes of a JSON-looking body, in pieces."""
    chunk = b" " * piece
    for _ in range(total // piece):
        yield chunk


@dataclass
class Prober:
    """Asks `/healthz` over and over from a thread; the slowest answer is the figure."""

    url: str
    every_seconds: float = 0.05
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def worst(self) -> float:
        return max(self.latencies, default=float("inf"))


@contextmanager
def probing(url: str) -> Iterator[Prober]:
    prober = Prober(url)
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                prober.latencies.append(time.monotonic() - started)
                prober.failures += not ok
                stop.wait(prober.every_seconds)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield prober
        # At least a few answers, so that "the worst" is a figure and not an empty list.
        deadline = time.monotonic() + 10
        while len(prober.latencies) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=15)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")
