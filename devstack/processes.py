"""Real processes for tests and benchmarks: a private Redis, an MLflow server, Celery workers.

Past the ~250 lines we aim for: each process is a small start-and-wait-until-ready
function, and they share the one way of starting, logging and stopping them kept here.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import httpx
import redis

from devstack.redis_server import server_args

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
T = TypeVar("T")
# uvicorn with irisq's connection limits (api.connections): a request head within a deadline,
# a few connections per client, and a cap on everything at once (then 503s).
API_SERVER_OPTIONS = ("--http", "api.connections:Protocol", "--limit-concurrency", "1000")
# irisq uses no MLflow server-side jobs; without them the server starts no 7 job consumers.
MLFLOW_SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A fixed piece of pure-Python work, and what it takes on one quiet core of the 2-core
# machine this project is developed on: how much slower this machine is right now (slower
# hardware, or cores shared with other work) is measured against it. ~80 ms: long enough
# that the scheduler shares the core with whatever else wants it, as it shares it with
# the processes under test (a shorter timing often runs alone in one time slice).
CALIBRATION_LOOPS = 2_400_000
CALIBRATION_QUIET_SECONDS = 0.078
MAX_SLOWDOWN = 6.0
_slowdown: tuple[float, float] = (float("-inf"), 1.0)  # (measured at, factor)


def _calibration_seconds() -> float:
    started = time.perf_counter()
    total = 0
    for i in range(CALIBRATION_LOOPS):
        total += i % 7
    return time.perf_counter() - started


def machine_slowdown() -> float:
    """How many times slower than a quiet development machine this one runs now (≥ 1,
    measured again every 30 s). Set IRISQ_DEADLINE_SCALE to impose a factor instead."""
    global _slowdown
    imposed = os.environ.get("IRISQ_DEADLINE_SCALE")
    if imposed:
        return max(1.0, float(imposed))
    measured_at, factor = _slowdown
    if time.monotonic() - measured_at > 30:
        seconds = _calibration_seconds()
        factor = min(MAX_SLOWDOWN, max(1.0, seconds / CALIBRATION_QUIET_SECONDS))
        _slowdown = (time.monotonic(), factor)
    return factor


def wait_for(
    check: Callable[[], T | None], deadline_seconds: float, what: str, every: float = 0.1
) -> T:
    """Poll `check` until it returns something truthy; fail with `what` past the deadline.

    The deadline is what a quiet machine needs with room to spare, stretched by
    `machine_slowdown()`: a busy or slower machine waits longer, never fails sooner."""
    deadline_seconds *= machine_slowdown()
    deadline = time.monotonic() + deadline_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not up yet
            last_error = exc
        time.sleep(every)
    raise TimeoutError(f"{what} within {deadline_seconds} s (last error: {last_error})")


@contextmanager
def running(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group, logging to `log`; stop it (and its children)."""
    handle: IO[bytes] = log.open("wb")
    process = subprocess.Popen(
        command,
        stdout=handle,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        handle.close()


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def local_secret(path: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(32)) -> str:
    """The secret kept in `path` (made by `make` on first use, readable by its owner only)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make() + "\n")
    return path.read_text().strip()


@contextmanager
def redis_server(
    data_dir: Path, port: int | None = None, maxmemory: str = "256mb"
) -> Iterator[str]:
    """A private Redis on a free port (never the machine's 6379), with a password; yields
    its URL (which holds the password).

    Given the `port` and `data_dir` of one that was stopped, it restarts that Redis from its
    append-only file.
    """
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "redis.log"
    password = local_secret(data_dir / "password")
    command = server_args(port, data_dir, maxmemory=maxmemory, password=password)
    with running(command, log) as process:
        url = f"redis://:{password}@127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            wait_for(client.ping, 10, f"Redis on port {port} answering")
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{tail(log)}") from None
        assert process.poll() is None
        yield url
        client.close()


@contextmanager
def mlflow_server(
    data_dir: Path, log: Path | None = None, port: int | None = None
) -> Iterator[str]:
    """A real `mlflow server` with a SQLite store and served artifacts; yields its URL.

    A second server on the same `data_dir` (with its own `log`) serves the same registry;
    one started on a stopped server's `port` is that server back.
    """
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{data_dir / 'mlflow.db'}",
        "--artifacts-destination",
        str(data_dir / "artifacts"),
    ]
    log = log or data_dir / "mlflow.log"
    with running(command, log, MLFLOW_SERVER_ENV):
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                lambda: httpx.get(f"{url}/health", timeout=1).is_success,
                90,
                "the MLflow server answering /health",
                every=0.25,
            )
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{tail(log)}") from None
        yield url


@contextmanager
def celery_worker(
    queues: str,
    name: str,
    env: dict[str, str],
    log: Path,
    concurrency: int = 1,
    app: str = "worker.celery_app",
    pool: str | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker, started as `make run` starts one."""
    command = [
        str(BIN / "celery"),
        "-A",
        app,
        "worker",
        "-Q",
        queues,
        "-n",
        f"{name}@%h",
        *(["-P", pool] if pool else []),
        "--concurrency",
        str(concurrency),
        "--loglevel",
        "INFO",
        "--without-mingle",
        "--without-gossip",
    ]
    with running(command, log, env) as process:
        yield process


@contextmanager
def callbacks_worker(
    env: dict[str, str], log: Path, name: str = "callbacks"
) -> Iterator[subprocess.Popen[bytes]]:
    """The callbacks worker, as `make run` starts it (Procfile `worker-callbacks`)."""
    with celery_worker(
        "callbacks", name, env, log, concurrency=8, app="worker.callbacks_app", pool="threads"
    ) as process:
        yield process


@contextmanager
def _http_server(
    command: list[str], log: Path, env: dict[str, str], url: str, health: str, what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server and yield it once `url` + `health` answers 2xx (60 s at most)."""
    with running(command, log, env) as process:
        try:
            wait_for(lambda: httpx.get(url + health, timeout=1).is_success, 60, what)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{tail(log)}") from None
        yield process


def api_command(host: str, port: int, factory: str = "api.main:create_app") -> list[str]:
    """The API's command line, as the Procfile and compose run it (`factory`
    `api.main:create_scoring_app`: the keyless scoring listener's)."""
    return [
        str(BIN / "uvicorn"),
        factory,
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        *API_SERVER_OPTIONS,
    ]


@contextmanager
def api_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """The API under uvicorn, as `make run` starts it; yields its base URL."""
    with api_process(env, log) as (url, _):
        yield url


@contextmanager
def scoring_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """The keyless scoring listener, as `make run` starts it with IRISQ_SCORING_PORT."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        *api_command("127.0.0.1", port, "api.main:create_scoring_app"),
        "--log-level",
        "warning",
    ]
    env = {**env, "IRISQ_SCORING_PORT": str(port)}
    with _http_server(command, log, env, url, "/healthz", "scoring listener up"):
        yield url


@contextmanager
def api_process(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The API under uvicorn, as `make run` starts it; yields its base URL and process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [*api_command("127.0.0.1", port), "--log-level", "warning"]
    with _http_server(command, log, env, url, "/healthz", "API up") as process:
        yield url, process


@contextmanager
def frontend_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """The Streamlit frontend, as `make run` starts it; yields its base URL."""
    port = free_port()
    command = [
        str(BIN / "streamlit"),
        "run",
        "frontend/app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    url = f"http://127.0.0.1:{port}"
    with _http_server(command, log, env, url, "/_stcore/health", "frontend up"):
        yield url
