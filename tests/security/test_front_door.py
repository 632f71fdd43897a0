"""The front door under attack, on a real uvicorn process with keys: size, time and rate
limits hold before anything is parsed, and the event loop stays free for everyone else."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from irisq.keys import hash_key, new_key
from irisq.settings import ApiKey
from tests.security.conftest import ALICE, KeyedApi, bearer
from tests.support.raw_http import peak_rss_mb, probing, send_request, zeros
from tests.support.stack import SETOSA, Stack

MB = 1 << 20
HUNDRED_MB = 100 * MB


def chunked(pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"


def head(path: str, *lines: str) -> str:
    return "\r\n".join([f"POST {path} HTTP/1.1", "Host: irisq", *lines])


def test_a_keyless_100_mb_body_costs_only_its_headers(keyed_api: KeyedApi) -> None:
    before = peak_rss_mb(keyed_api.process.pid)
    answers = []
    with probing(keyed_api.url) as probe:
        for _ in range(50):  # 150 attempts of 100 MB each, while /healthz is asked throughout
            answers.append(
                send_request(
                    keyed_api.url,
                    head("/v1/predictions", f"Content-Length: {HUNDRED_MB}"),
                    zeros(HUNDRED_MB),
                )
            )
            answers.append(
                send_request(
                    keyed_api.url,
                    head("/v1/predictions", "Transfer-Encoding: chunked"),
                    chunked(zeros(HUNDRED_MB)),
                )
            )
            answers.append(
                send_request(
                    keyed_api.url,
                    head("/invocations", "Transfer-Encoding: chunked", "Content-Type: text/csv"),
                    chunked(zeros(HUNDRED_MB)),
                )
            )
    grown = peak_rss_mb(keyed_api.process.pid) - before
    slowest = max(answer.seconds for answer in answers)
    taken = max(answer.body_sent for answer in answers)
    print(
        f"\n150 keyless 100 MB bodies: statuses {sorted({a.status or 0 for a in answers})}, "
        f"slowest answer {slowest * 1000:.0f} ms, at most {taken / MB:.1f} MB sent before it; "
        f"peak RSS +{grown:.1f} MB; /healthz worst {probe.worst * 1000:.0f} ms over "
        f"{len(probe.latencies)} probes"
    )

    # The size is refused first, from Content-Length alone; then the missing key (401, and
    # 429 once this address has failed too often).
    assert [a.status for a in answers[0::3]] == [413] * 50
    assert {a.status for i, a in enumerate(answers) if i % 3} <= {401, 429}
    assert answers[1].status == 401
    assert slowest < 1.0
    assert taken < 8 * MB  # what the socket buffers took, not a body the API read
    assert grown < 50
    assert probe.failures == 0
    assert probe.worst < 0.2


def test_a_keyed_oversized_body_is_refused_while_it_streams(keyed_api: KeyedApi) -> None:
    before = peak_rss_mb(keyed_api.process.pid)
    answer = send_request(
        keyed_api.url,
        head(
            "/v1/predictions",
            "Transfer-Encoding: chunked",
            "Content-Type: application/json",
            f"Authorization: Bearer {ALICE}",
        ),
        chunked(zeros(HUNDRED_MB)),
    )
    grown = peak_rss_mb(keyed_api.process.pid) - before
    print(f"\nkeyed 100 MB chunked: {answer.status} after {answer.body_sent / MB:.1f} MB sent")

    assert answer.status == 413
    assert "larger than the limit of 4,194,304 bytes" in answer.text
    assert answer.body_sent < 16 * MB
    assert grown < 50


def test_a_stalled_body_gets_408(keyed_api: KeyedApi) -> None:
    answer = send_request(
        keyed_api.url,
        head(
            "/v1/predictions",
            "Content-Length: 1000",
            "Content-Type: application/json",
            f"Authorization: Bearer {ALICE}",
        ),
        iter([b'{"rows": [']),  # then nothing: the idle timeout is 2 s here
        deadline_seconds=20,
    )

    assert answer.status == 408, answer.text
    assert "stalled" in answer.text
    assert answer.seconds < 10


def test_a_trickled_body_gets_408(keyed_api: KeyedApi) -> None:
    def trickle() -> Iterator[bytes]:
        while True:  # a byte every 0.2 s: far under the minimum speed
            time.sleep(0.2)
            yield b" "

    answer = send_request(
        keyed_api.url,
        head(
            "/v1/predictions",
            "Content-Length: 100000",
            "Content-Type: application/json",
            f"Authorization: Bearer {ALICE}",
        ),
        trickle(),
        deadline_seconds=40,
    )
    print(f"\ntrickled body: {answer.status} after {answer.seconds:.1f} s")

    assert answer.status == 408
    assert "too slowly" in answer.text
    assert answer.seconds < 8  # the grace is 1 s here (the default's 10 s would be past)


def test_slow_request_heads_are_closed_and_connections_capped(keyed_api: KeyedApi) -> None:
    """300 keyless connections trickling a header: 20 per address are let in (here), and
    those are closed once the head deadline (3 s here) passes."""
    sockets = []
    try:
        for _ in range(300):
            sock = socket.create_connection(("127.0.0.1", int(keyed_api.url.rsplit(":", 1)[1])))
            sock.sendall(b"POST /v1/predictions HTTP/1.1\r\nHost: irisq\r\n")
            sockets.append(sock)
        opened = time.monotonic()
        closed_at: dict[int, float] = {}
        while len(closed_at) < len(sockets) and time.monotonic() - opened < 30:
            for number, sock in enumerate(sockets):
                if number in closed_at:
                    continue
                try:
                    sock.sendall(b"X")  # the trickle: a header byte now and then
                    sock.setblocking(False)
                    data = sock.recv(1024)
                    if data == b"":
                        closed_at[number] = time.monotonic() - opened
                except BlockingIOError:
                    pass
                except OSError:
                    closed_at[number] = time.monotonic() - opened
                finally:
                    sock.setblocking(True)
            time.sleep(0.5)
        healthy = httpx.get(keyed_api.url + "/healthz", timeout=5).status_code
    finally:
        for sock in sockets:
            sock.close()
    last = max(closed_at.values(), default=float("inf"))
    print(f"\n300 trickling heads: {len(closed_at)} closed, the last after {last:.1f} s")

    assert len(closed_at) == 300
    assert last < 15  # the 3 s head deadline, with room for a loaded machine
    assert healthy == 200


def test_a_15_mb_scoring_body_leaves_the_event_loop_free(keyed_api: KeyedApi) -> None:
    """Parsed off the loop: everyone else's requests go on while it is decoded."""
    padding = "x" * 1500
    records = [{**SETOSA, "note": padding} for _ in range(10_000)]
    body = json.dumps({"dataframe_records": records}).encode()
    too_many = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]] * 800_000}).encode()[: 15 * MB]
    with probing(keyed_api.url) as probe, httpx.Client(timeout=60) as client:
        started = time.monotonic()
        scored = client.post(
            keyed_api.url + "/invocations",
            content=body,
            headers={**bearer(ALICE), "Content-Type": "application/json"},
        )
        scored_seconds = time.monotonic() - started
        refused = client.post(
            keyed_api.url + "/invocations",
            content=too_many,
            headers={**bearer(ALICE), "Content-Type": "application/json"},
        )
    print(
        f"\n/invocations {len(body) / MB:.1f} MB, 10,000 rows: {scored.status_code} in "
        f"{scored_seconds:.2f} s; {len(too_many) / MB:.0f} MB of numbers: "
        f"{refused.status_code}; /healthz worst {probe.worst * 1000:.0f} ms"
    )

    assert scored.status_code == 200, scored.text
    assert scored.json()["predictions"] == ["setosa"] * 10_000
    assert refused.status_code == 413
    assert "more than 2,500,000 values" in refused.json()["detail"]  # 10 a row of 250,000
    assert probe.worst < 0.2


@contextmanager
def one_key_api(stack: Stack, **settings: Any) -> Iterator[tuple[TestClient, str]]:
    """An API in this process with one predict key and `settings`; the client and the key."""
    key = new_key()
    keys = [ApiKey(name="erin", role="predict", sha256=hash_key(key))]
    configured = stack.settings.model_copy(update={"api_keys": keys, **settings})
    with TestClient(create_app(configured)) as client:
        yield client, key


def test_missing_and_wrong_keys_are_rate_limited_per_address(stack: Stack) -> None:
    with one_key_api(stack, auth_failures_per_minute=20) as (client, key):
        answers = [client.get("/v1/models", headers=bearer(f"irisq_guess{i}")) for i in range(30)]
        keyless = client.post("/v1/predictions", json={"rows": [SETOSA]})
        valid = client.get("/v1/me", headers=bearer(key))
    codes = [answer.status_code for answer in answers]

    assert codes == [401] * 20 + [429] * 10  # a burst of 20, then 20 a minute
    assert answers[-1].headers["Retry-After"].isdigit()
    assert keyless.status_code == 429  # a missing key counts as a failed one
    assert valid.status_code == 200  # a valid key still gets in from the same address


@pytest.fixture
def limited(stack: Stack) -> Iterator[tuple[TestClient, str]]:
    with one_key_api(stack, rate_limit_per_second=10) as client_and_key:
        yield client_and_key


def test_the_rate_limit_slides_rather_than_resetting(limited: tuple[TestClient, str]) -> None:
    """GCRA: a burst of 10, then 10 a second; never twice that around a second boundary,
    which a fixed one-second window lets through."""
    client, key = limited
    started = time.monotonic()
    codes = []
    while time.monotonic() - started < 2.5:
        codes.append(client.get("/v1/me", headers=bearer(key)).status_code)
    elapsed = time.monotonic() - started
    allowed = codes.count(200)
    print(f"\n{len(codes)} requests in {elapsed:.1f} s at 10/s: {allowed} allowed")

    assert allowed <= 10 + 10 * elapsed + 1
    assert allowed >= 10 + 10 * (elapsed - 0.5) - 1  # and it lets the rate through
    assert 429 in codes
