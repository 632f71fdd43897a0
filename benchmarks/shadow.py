"""Online throughput with a challenger shadow-scored beside the champion, against without.

    .venv/bin/python -m benchmarks.shadow [--url http://127.0.0.1:8002] [--seconds 10] [--rounds 2]

Drives single-row predictions (`POST /v1/predictions?wait=5`, wrk, 32 connections) at a
running stack (`make run`'s by default), in rounds that alternate between no challenger and
a challenger (this shared machine's speed drifts within minutes: alternating spreads the
drift over both). The challenger is a version trained for it
(`POST /v1/training?challenger=true`, a random forest: slower to score than the champion's
default logistic regression) unless another signed version is there. It prints each
round's throughput, the rows the challenger compared in it, and the ratio of the medians;
the challenger the stack had before is put back at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.online import ROW, drive_wrk, irisq_call
from devstack.processes import wait_for

METRICS_CACHE_SECONDS = 1.1


def _models(api: httpx.Client) -> dict[str, Any]:
    response = api.get("/v1/models")
    response.raise_for_status()
    models: dict[str, Any] = response.json()
    return models


def _a_challenger(api: httpx.Client) -> str:
    """A signed version that is not the champion, trained as challenger if need be."""
    models = _models(api)
    others = [v["version"] for v in models["versions"] if v["signed"] and not v["is_champion"]]
    if others:
        return str(others[0])
    response = api.post(
        "/v1/training",
        params={"challenger": "true"},
        json={"algorithm": "random_forest", "params": {}},
    )
    response.raise_for_status()
    job_url = f"/v1/jobs/{response.json()['job_id']}"
    job = wait_for(lambda: _finished(api, job_url), 300, "the challenger trained", every=1)
    if job["status"] != "succeeded":
        raise RuntimeError(f"training the challenger failed: {job}")
    return str(job["result"]["model_version"])


def _finished(api: httpx.Client, job_url: str) -> dict[str, Any] | None:
    job: dict[str, Any] = api.get(job_url).json()
    return None if job["status"] in ("queued", "running") else job


def _settled(api: httpx.Client, pair: tuple[str, str], shadowed: bool) -> None:
    """Until every predict process follows the alias: predictions are compared, or not."""

    def follows() -> bool:
        before = _compared(api, pair)
        for _ in range(8):  # groups reach any of the pool processes
            api.post("/v1/predictions?wait=5", json={"rows": [ROW]}).raise_for_status()
        time.sleep(METRICS_CACHE_SECONDS)  # the API reads Redis for /metrics once a second
        return _compared(api, pair) - before == (8 if shadowed else 0)

    wait_for(follows, 60, f"the workers {'' if shadowed else 'no longer '}shadow-scoring")


def _compared(api: httpx.Client, pair: tuple[str, str]) -> int:
    """Rows the pair compared, from /metrics (which has it whether or not it is current)."""
    for family in text_string_to_metric_families(api.get("/metrics").text):
        for sample in family.samples:
            labels = (sample.labels.get("champion"), sample.labels.get("challenger"))
            if sample.name == "irisq_shadow_rows_total" and labels == pair:
                return int(sample.value)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8002")
    parser.add_argument("--key", default=os.environ.get("IRISQ_API_KEY"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="of each, alternating")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    with httpx.Client(base_url=args.url, headers=headers, timeout=60) as api:
        before = _models(api)["challenger"]
        challenger = before or _a_challenger(api)
        pair = (str(_models(api)["champion"]), challenger)
        print(f"champion {pair[0]}, challenger {challenger}", flush=True)
        runs: dict[bool, list[float]] = {False: [], True: []}
        try:
            for _ in range(args.rounds):
                for shadowed in (False, True):
                    if shadowed:
                        api.put("/v1/models/challenger", json={"version": int(challenger)})
                    else:
                        api.delete("/v1/models/challenger")
                    _settled(api, pair, shadowed)
                    compared = _compared(api, pair)
                    result = drive_wrk(args.url, irisq_call, 32, args.seconds, headers)
                    time.sleep(METRICS_CACHE_SECONDS)
                    compared = _compared(api, pair) - compared
                    runs[shadowed].append(result["rps"])
                    print(
                        f"{'with' if shadowed else 'without':<8} challenger: "
                        f"{result['rps']:7.0f} req/s  p50 {result['p50']:6.1f} ms  "
                        f"p99 {result['p99']:6.1f} ms  rows compared {compared:,}",
                        flush=True,
                    )
        finally:
            if before:
                api.put("/v1/models/challenger", json={"version": int(before)})
            else:
                api.delete("/v1/models/challenger")
    ratio = statistics.median(runs[True]) / statistics.median(runs[False])
    print(f"throughput with a challenger / without: {ratio:.2f}x (goal >= 0.7x)")


if __name__ == "__main__":
    main()
