"""Online speed: single-row predictions over HTTP, irisq against synchronous serving.

    .venv/bin/python -m benchmarks.online [--requests 2000] [--concurrency 1 8 32]
    .venv/bin/python -m benchmarks.online --url http://127.0.0.1:8002   # `make run`'s stack
    .venv/bin/python -m benchmarks.online --url http://127.0.0.1:8002 --wrk 10  # by wrk
    .venv/bin/python -m benchmarks.online --url http://127.0.0.1:8002 --concurrency 1 32 \
        --wrk 10 --rounds 3  # what the README's table shows

Starts a private stack (Redis, MLflow server, a champion, a predict worker with two pool
processes, the API under uvicorn), then drives single-row predictions at each concurrency
against, in turn on the same machine and model:
(a) irisq: `POST /v1/predictions?wait=5`, falling back to polling if a 202 comes back;
(b) `mlflow models serve -w 2` on the same registered version (`/invocations`), once as
    `pip install mlflow` runs it and once with uvicorn's uvloop and httptools (see
    mlflow_serve);
(c) a minimal in-process FastAPI app (benchmarks/inprocess_app.py), the no-queue ceiling.
All stay up together and take turns at each concurrency; `--rounds N` measures them N
times, in a rotating order. It prints throughput and p50/p99 submit→result latency of
each, and irisq's ratios.
The load comes from aiohttp in this process, or with `--wrk SECONDS` from wrk (a C tool
that takes the cores far less from the servers it measures; `apt install wrk`).

With `--url`, irisq is the stack already running there (what a user measures: `make run`,
its process runner and logs included), and (b) and (c) serve that stack's champion, read
from its MLflow (`--mlflow`, `make run`'s by default) with the secret in `var/secret-key`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np

from benchmarks.scratch import scratch_folder
from devstack.processes import (
    BIN,
    ROOT,
    api_server,
    celery_worker,
    free_port,
    local_secret,
    mlflow_server,
    redis_server,
    running,
    wait_for,
)
from irisq.settings import Settings

ROW = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}
# aiohttp, not httpx, drives the load: on two cores the client shares the CPU with the
# servers it measures, and aiohttp costs it a fraction of httpx's time per request.
Call = Callable[[aiohttp.ClientSession], Awaitable[None]]
PREDICTION = {"rows": [ROW]}
INVOCATION = {"dataframe_split": {"columns": list(ROW), "data": [list(ROW.values())]}}


async def irisq_call(client: aiohttp.ClientSession) -> None:
    async with client.post("/v1/predictions?wait=5", json=PREDICTION) as response:
        if response.status == 200:
            await response.read()
            return
        if response.status != 202:
            raise RuntimeError(f"irisq answered {response.status}: {await response.text()}")
        job_url = response.headers["Location"]
    while True:  # not finished within the wait: poll, as a client would
        async with client.get(job_url) as polled:
            if (await polled.json())["status"] in ("succeeded", "failed"):
                return
        await asyncio.sleep(0.005)


async def mlflow_call(client: aiohttp.ClientSession) -> None:
    async with client.post("/invocations", json=INVOCATION) as response:
        response.raise_for_status()
        await response.read()


async def inprocess_call(client: aiohttp.ClientSession) -> None:
    async with client.post("/predict", json=ROW) as response:
        response.raise_for_status()
        await response.read()


async def drive(
    url: str, call: Call, concurrency: int, requests: int, headers: dict[str, str] | None = None
) -> dict[str, float]:
    """`requests` calls, `concurrency` at a time; throughput and latency percentiles."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        url, connector=connector, timeout=timeout, headers=headers
    ) as client:

        async def run(count: int, latencies: list[float]) -> None:
            remaining = count

            async def user() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    started = time.perf_counter()
                    await call(client)
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(user() for _ in range(concurrency)))

        # Warm up at the same concurrency, so that every connection is open (and every cache
        # filled) before the clock starts: the first request on a connection pays its setup.
        await run(max(50, 4 * concurrency), [])
        latencies: list[float] = []
        started = time.perf_counter()
        await run(requests, latencies)
        elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return {
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
    }


@contextmanager
def mlflow_serve(tracking_uri: str, version: str, log: Path, stock: bool) -> Any:
    """`mlflow models serve -w 2` on `version`.

    `stock`: as `pip install mlflow` runs it, on plain `uvicorn` (asyncio and h11; MLflow
    does not ask for uvicorn's extras). With `--workers`, uvicorn then leaves Nagle's
    algorithm on for every connection (uvicorn#3149, open in 0.54), and keep-alive answers
    wait on the client's delayed ACK. This venv has uvicorn[standard] for irisq's own API,
    so the stock run asks uvicorn for asyncio and h11 by its environment variables; the
    other run keeps uvloop and httptools, which set TCP_NODELAY themselves.
    """
    port = free_port()
    command = [
        str(BIN / "mlflow"), "models", "serve", "-m", f"models:/iris/{version}",
        "--env-manager", "local", "-w", "2", "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    # It starts `uvicorn` by name: the venv's bin must be on PATH.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    # The model is one this run trained (or the stack's own champion): trusted. This process
    # imported the worker's registry, which forbids MLflow's unpickling for workers
    # (worker.mlflow_env), and a child would inherit that.
    env = {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": path,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    if stock:
        env |= {"UVICORN_LOOP": "asyncio", "UVICORN_HTTP": "h11"}
    with running(command, log, env):
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/ping", timeout=1).is_success, 120, "mlflow serve")
        yield url


@contextmanager
def inprocess_app(model_dir: Path, log: Path) -> Any:
    port = free_port()
    command = [
        str(BIN / "uvicorn"), "benchmarks.inprocess_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    env = {"IRISQ_BENCH_MODEL": str(model_dir), "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true"}
    with running(command, log, env):  # the model is trusted, as in mlflow_serve
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/docs", timeout=1).is_success, 60, "in-process app")
        yield url


# wrk (C, a fraction of aiohttp's CPU per request): each call's path and body, and a script
# that counts every answer but a 200 (a 202 means irisq did not finish within the wait).
WRK_TARGETS: dict[Call, tuple[str, object]] = {
    irisq_call: ("/v1/predictions?wait=5", PREDICTION),
    mlflow_call: ("/invocations", INVOCATION),
    inprocess_call: ("/predict", ROW),
}
WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
%s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) other = 0 end
function response(status, headers, body) if status ~= 200 then other = other + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("other") end
  io.write(string.format("answers other than 200: %%d\\n", total))
end
"""
WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def drive_wrk(
    url: str, call: Call, concurrency: int, seconds: float, headers: dict[str, str] | None
) -> dict[str, float]:
    """`concurrency` connections for `seconds` (after as long a warm-up, not counted)."""
    path, body = WRK_TARGETS[call]
    auth = "".join(f'wrk.headers["{k}"] = {json.dumps(v)}\n' for k, v in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(WRK_SCRIPT % (json.dumps(json.dumps(body)), auth))
        script.flush()
        command = ["wrk", "-t1", f"-c{concurrency}", "--latency", "-s", script.name, url + path]
        subprocess.run([*command[:-1], f"-d{seconds:g}s", url + path], capture_output=True)
        out = subprocess.run(
            [*command[:-1], f"-d{seconds:g}s", url + path], capture_output=True, text=True
        ).stdout
    other = int(re.search(r"answers other than 200: (\d+)", out)[1])  # type: ignore[index]
    if other:
        raise RuntimeError(f"{other} answers other than 200 from {url}{path}:\n{out}")

    def percentile(label: str) -> float:
        found = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)$", out, re.MULTILINE)
        assert found, out
        return float(found[1]) * WRK_UNITS[found[2]]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rps, out
    return {"rps": float(rps[1]), "p50": percentile("50"), "p99": percentile("99")}


def measure(
    name: str,
    url: str,
    call: Call,
    levels: list[int],
    requests: int,
    headers: dict[str, str] | None = None,
    wrk_seconds: float | None = None,
) -> dict[int, Any]:
    """Each level by aiohttp (`requests` calls), or by wrk for `wrk_seconds` if given."""
    results = {}
    for concurrency in levels:
        if wrk_seconds:
            results[concurrency] = drive_wrk(url, call, concurrency, wrk_seconds, headers)
        else:
            results[concurrency] = asyncio.run(drive(url, call, concurrency, requests, headers))
        r = results[concurrency]
        print(
            f"{name:<22} c={concurrency:<3} {r['rps']:8.0f} req/s   "
            f"p50 {r['p50']:7.2f} ms   p99 {r['p99']:7.2f} ms",
            flush=True,
        )
    return results


# A server's name in the tables, and the call that drives it.
SERVERS: dict[str, tuple[str, Call]] = {
    "irisq": ("irisq (queue + wait)", irisq_call),
    "mlflow": ("mlflow models serve", mlflow_call),
    "mlflow+uvloop": ("mlflow+uvloop models serve", mlflow_call),
    "inprocess": ("in-process FastAPI", inprocess_call),
}


def compare(
    irisq: str,
    headers: dict[str, str],
    mlflow: str,
    version: str,
    model_dir: Path,
    work: Path,
    args: argparse.Namespace,
) -> None:
    """Start the synchronous servers on the same version beside irisq, then measure them
    level by level, `args.rounds` times, and print irisq's ratios to each, round by round.

    The servers take turns at each level, in an order that rotates every round: the two
    sides of a ratio are measured a few tens of seconds apart, on a machine whose speed
    drifts (a shared VM's moves by half within an hour), and no server always goes first."""
    names = list(SERVERS)
    with ExitStack() as servers:
        urls = {"irisq": irisq}
        for name, stock in (("mlflow", True), ("mlflow+uvloop", False)):
            urls[name] = servers.enter_context(
                mlflow_serve(mlflow, version, work / f"{name}.log", stock)
            )
        urls["inprocess"] = servers.enter_context(inprocess_app(model_dir, work / "inprocess.log"))
        rounds: list[dict[str, dict[int, Any]]] = []
        for number in range(args.rounds):
            if args.rounds > 1:
                print(f"\nround {number + 1} of {args.rounds}")
            order = names[number % len(names) :] + names[: number % len(names)]
            table: dict[str, dict[int, Any]] = {name: {} for name in names}
            for c in args.concurrency:
                for name in order:
                    label, call = SERVERS[name]
                    headers_of = headers if name == "irisq" else None
                    table[name] |= measure(
                        label, urls[name], call, [c], args.requests, headers_of, args.wrk
                    )
            rounds.append(table)
    print_ratios(rounds, args.concurrency)


def print_ratios(rounds: list[dict[str, dict[int, Any]]], levels: list[int]) -> None:
    """irisq's throughput over each server's, and its p50 and p99 beside the in-process
    app's, per round, with the median over rounds."""
    others = [name for name in SERVERS if name != "irisq"]
    print("\nthroughput ratios: irisq / each" + (", round by round" if len(rounds) > 1 else ""))
    print(f"{'':<6}" + "".join(f"{name:>16}" for name in others))
    for c in levels:
        per_round = [
            [table["irisq"][c]["rps"] / table[name][c]["rps"] for name in others]
            for table in rounds
        ]
        for ratios in per_round:
            print(f"c={c:<4}" + "".join(f"{ratio:15.2f}x" for ratio in ratios))
        if len(rounds) > 1:
            medians = np.median(np.asarray(per_round), axis=0)
            print("median" + "".join(f"{ratio:15.2f}x" for ratio in medians))
    print("\nlatency, irisq against the in-process app (ms): p50 difference, p99 of each")
    for c in levels:
        p50 = [t["irisq"][c]["p50"] - t["inprocess"][c]["p50"] for t in rounds]
        p99 = [(t["irisq"][c]["p99"], t["inprocess"][c]["p99"]) for t in rounds]
        print(
            f"c={c:<4} p50 "
            + " / ".join(f"{d:+.2f}" for d in p50)
            + "   p99 "
            + " / ".join(f"{mine:.1f} vs {theirs:.1f}" for mine, theirs in p99)
            + (f"   median p50 {np.median(p50):+.2f}" if len(rounds) > 1 else "")
        )


def on_private_stack(args: argparse.Namespace, work: Path) -> None:
    # Signs job ids and models: this process (which trains the champion) and the children
    # it starts share one, as `make run`'s processes share var/secret-key.
    os.environ.setdefault("IRISQ_SECRET_KEY", secrets.token_urlsafe(32))
    with redis_server(work / "redis") as redis_url, mlflow_server(work / "mlflow") as mlflow:
        settings = Settings(
            redis_url=redis_url, mlflow_tracking_uri=mlflow, models_dir=work / "models"
        )
        from worker.registry import Registry
        from worker.training import train_and_register

        result = train_and_register("logistic_regression", {}, settings)
        version = result.model_version
        registry = Registry(settings)
        registry.load(version)  # makes the local copy the ceiling app loads
        env = {
            "IRISQ_REDIS_URL": redis_url,
            "IRISQ_MLFLOW_TRACKING_URI": mlflow,
            "IRISQ_MODELS_DIR": str(settings.models_dir),
            "IRISQ_BOOTSTRAP_CHAMPION": "false",
        }
        with (
            # Two pool processes, as `make run` and compose start the predict worker.
            celery_worker("predict", "bench", env, work / "worker.log", concurrency=2),
            api_server(env, work / "api.log") as api,
        ):
            wait_for(
                lambda: httpx.get(f"{api}/readyz", timeout=2).json()["checks"]["predict_workers"][
                    "ok"
                ],
                120,
                "the predict worker",
            )
            compare(api, {}, mlflow, version, registry.copies / version, work, args)


def on_running_stack(args: argparse.Namespace, work: Path) -> None:
    """irisq as it runs at `args.url`; the others on its champion, copied from its MLflow."""
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    api = args.url.rstrip("/")
    models = httpx.get(f"{api}/v1/models", headers=headers, timeout=10).raise_for_status()
    version = models.json()["champion"]
    if version is None:
        raise SystemExit(f"{api} has no champion yet: train one first (`make train`)")
    secret = os.environ.get("IRISQ_SECRET_KEY") or local_secret(ROOT / "var" / "secret-key")
    settings = Settings(
        mlflow_tracking_uri=args.mlflow, models_dir=work / "models", secret_key=secret
    )
    from worker.registry import Registry

    registry = Registry(settings)
    registry.load(version)  # the ceiling app loads this copy, checked as workers check it
    print(f"irisq at {api}, champion version {version}; its processes stay up meanwhile")
    compare(api, headers, args.mlflow, version, registry.copies / version, work, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="per concurrency level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every server this many times, taking turns, and print each round's "
        "ratios and their median",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--url", help="measure the irisq API running there (e.g. make run's)")
    parser.add_argument("--mlflow", default="http://127.0.0.1:8003", help="with --url")
    parser.add_argument("--key", default=os.environ.get("IRISQ_API_KEY"), help="with --url")
    parser.add_argument(
        "--wrk",
        type=float,
        metavar="SECONDS",
        help="drive every server with wrk (apt install wrk) for this long per level, after "
        "a warm-up as long, instead of aiohttp",
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if args.wrk:
        print(f"{os.cpu_count()} CPUs; wrk, {args.wrk:g} s of single-row requests per level")
    else:
        print(f"{os.cpu_count()} CPUs; {args.requests} single-row requests per level")
    with scratch_folder("irisq-online-", args.keep) as work:
        if args.url:
            on_running_stack(args, work)
        else:
            on_private_stack(args, work)


if __name__ == "__main__":
    main()
