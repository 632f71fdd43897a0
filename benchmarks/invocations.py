"""Large MLflow scoring bodies: one `/invocations` request of many rows, irisq against
`mlflow models serve` on the same model, side by side.

    .venv/bin/python -m benchmarks.invocations [--rows 100000] [--repeat 5]
        [--url http://127.0.0.1:8002] [--mlflow http://127.0.0.1:8003]

irisq is the stack running at `--url` (`make run`'s by default, its champion); `mlflow models
serve -w 2` serves the same version, read from that stack's MLflow. Both get the same
`dataframe_split` body of `--rows` random flowers, `--repeat` times each after one warm-up
call, the calls alternating between the two; the script prints the median time of each,
irisq's ratio, and whether the two answered the same species for every row.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import httpx
import numpy as np

from benchmarks.online import mlflow_serve
from benchmarks.scratch import scratch_folder
from irisq.ranges import OBSERVED_RANGES
from irisq.schema import FEATURES


def body_of(rows: int) -> bytes:
    generator = np.random.default_rng(11)
    values = np.column_stack([generator.uniform(*OBSERVED_RANGES[f], rows) for f in FEATURES])
    data = np.round(values, 1).tolist()
    return json.dumps({"dataframe_split": {"columns": list(FEATURES), "data": data}}).encode()


def interleaved(
    client: httpx.Client, urls: dict[str, str], body: bytes, repeat: int
) -> dict[str, tuple[float, list[str]]]:
    """Each server's median seconds over `repeat` calls (after one warm-up each), and its
    last answer. The calls alternate between the servers, so that a machine whose speed
    drifts (a shared VM) slows both alike."""
    headers = {"Content-Type": "application/json"}
    for url in urls.values():
        client.post(url, content=body, headers=headers).raise_for_status()
    seconds: dict[str, list[float]] = {name: [] for name in urls}
    answers: dict[str, list[str]] = {}
    for _ in range(repeat):
        for name, url in urls.items():
            started = time.perf_counter()
            response = client.post(url, content=body, headers=headers)
            seconds[name].append(time.perf_counter() - started)
            response.raise_for_status()
            answers[name] = response.json()["predictions"]
    return {name: (statistics.median(seconds[name]), answers[name]) for name in urls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", default="http://127.0.0.1:8002", help="the irisq API")
    parser.add_argument("--mlflow", default="http://127.0.0.1:8003", help="its MLflow")
    parser.add_argument("--key", default=os.environ.get("IRISQ_API_KEY"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    api = args.url.rstrip("/")
    with httpx.Client(headers=auth, timeout=300) as client:
        version = client.get(f"{api}/v1/models").raise_for_status().json()["champion"]
        if version is None:
            raise SystemExit(f"{api} has no champion yet: train one first (`make train`)")
        body = body_of(args.rows)
        print(
            f"{os.cpu_count()} CPUs; {args.rows:,} rows, {len(body) / 2**20:.1f} MB of "
            f"dataframe_split; champion version {version}; median of {args.repeat}"
        )
        with (
            scratch_folder("irisq-invocations-", args.keep) as work,
            mlflow_serve(args.mlflow, version, work / "mlflow.log", stock=True) as served,
        ):
            urls = {"irisq": f"{api}/invocations", "mlflow": f"{served}/invocations"}
            found = interleaved(client, urls, body, args.repeat)
    (irisq_seconds, irisq_answer), (mlflow_seconds, mlflow_answer) = found.values()
    print(f"irisq /invocations            {irisq_seconds:7.3f} s")
    print(f"mlflow models serve -w 2      {mlflow_seconds:7.3f} s")
    same = irisq_answer == mlflow_answer
    print(
        f"irisq / mlflow models serve: {irisq_seconds / mlflow_seconds:.2f}x; "
        f"same species for every row: {same}"
    )
    if not same:
        raise SystemExit("the two answers differ")


if __name__ == "__main__":
    main()
