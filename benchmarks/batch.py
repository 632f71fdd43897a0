"""Batch scoring speed and memory: irisq end to end against the in-process floor.

    .venv/bin/python -m benchmarks.batch [--rows 1000000] [--semicolon] [--keep]
                                         [--storage local|s3|both] [--processes 1,2]

Starts a private stack (Redis, MLflow server, one predict worker with 1, then 2, ... pool
processes (`--processes`), the API under uvicorn), trains a champion, writes a CSV of random
flowers (`,` and LF; with `--semicolon` as a French spreadsheet exports it: BOM, `;`, decimal
commas, CRLF, which the result keeps), then measures
(a) irisq: upload → poll until succeeded → download the result, and
(b) the floor: pyarrow read + one predict_proba + pyarrow CSV write, same file and model,
and prints both times, their ratio, the time on N processes against 1 (a file larger than
IRISQ_BATCH_PART_BYTES is scored in parts by every process) and the pool processes' peak
RSS (VmHWM).
With `--storage both` (the default) irisq runs twice in the same run, its batches in a
local folder and then in S3 (a private SeaweedFS server), and the two results are compared
byte for byte.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import secrets
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np

from benchmarks.scratch import scratch_folder
from devstack.object_storage import s3_server
from devstack.processes import api_server, celery_worker, mlflow_server, redis_server, wait_for
from irisq.ranges import OBSERVED_RANGES
from irisq.schema import FEATURES, SPECIES
from irisq.settings import Settings


def make_csv(path: Path, rows: int, semicolon: bool, seed: int = 0) -> None:
    """Random flowers within the dataset's ranges, 4 decimals (~28 bytes a row, the size
    of the reference file), written in 1M-row slices."""
    generator = np.random.default_rng(seed)
    delimiter, end = (";", "\r\n") if semicolon else (",", "\n")
    with path.open("w", encoding="utf-8-sig" if semicolon else "utf-8", newline="") as handle:
        handle.write(delimiter.join(FEATURES) + end)
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            block = np.column_stack([generator.uniform(*OBSERVED_RANGES[f], n) for f in FEATURES])
            text = io.StringIO()
            np.savetxt(text, block, fmt="%.4f", delimiter=delimiter, newline=end)
            handle.write(text.getvalue().replace(".", ",") if semicolon else text.getvalue())


def floor(source: Path, target: Path, estimator: object, semicolon: bool) -> float:
    """The in-process floor: typed pyarrow read, one predict_proba, pyarrow write."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    table = pacsv.read_csv(
        source,
        parse_options=pacsv.ParseOptions(delimiter=";" if semicolon else ","),
        convert_options=pacsv.ConvertOptions(decimal_point="," if semicolon else "."),
    )
    features = np.column_stack([table.column(f).to_numpy() for f in FEATURES])
    probabilities = estimator.predict_proba(features)  # type: ignore[attr-defined]
    table = table.append_column("species", pa.array(np.asarray(SPECIES)[probabilities.argmax(1)]))
    for k, species in enumerate(SPECIES):
        table = table.append_column(f"probability_{species}", pa.array(probabilities[:, k]))
    pacsv.write_csv(table, target)
    return time.perf_counter() - started


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pool_children(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(c) for c in children]


# The benchmark's own client must not be what it measures: httpx took 2.5 s to read a
# 664 MB download that the standard library's client reads in 0.62 s, and 0.44-0.69 s to
# send an 84 MB upload that curl sends in 0.17-0.25 s (measured 2026-12-04). Both moves go
# through http.client in 1 MiB pieces, as curl would.
PIECE = 1 << 20


def _connection(api: str) -> http.client.HTTPConnection:
    address = urlsplit(api)
    return http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=600)


def upload(api: str, source: Path) -> str:
    """POST `source` to /v1/batches as the multipart field `file`; the job id."""
    boundary = secrets.token_hex(16)
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="bench.csv"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    connection = _connection(api)
    try:
        connection.putrequest("POST", "/v1/batches")
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(head) + source.stat().st_size + len(tail)))
        connection.endheaders()
        try:
            connection.send(head)
            with source.open("rb") as file:
                while piece := file.read(PIECE):
                    connection.send(piece)
            connection.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end (413, 429): the answer says why
        response = connection.getresponse()
        answer = response.read()
        if response.status != 202:
            raise RuntimeError(f"upload: {response.status} {answer[:200]!r}")
        job_id: str = json.loads(answer)["job_id"]
        return job_id
    finally:
        connection.close()


def download(api: str, path: str, target: Path) -> None:
    """GET `path` into `target`."""
    connection = _connection(api)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {response.read()[:200]!r}")
        expected, written = int(response.getheader("Content-Length", "-1")), 0
        with target.open("wb") as out:
            while piece := response.read(PIECE):
                written += out.write(piece)
        if written != expected:  # http.client ends a cut-off body quietly
            raise RuntimeError(f"GET {path}: {written:,} bytes of {expected:,}")
    finally:
        connection.close()


def irisq_end_to_end(api: str, source: Path, target: Path) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    job_id = upload(api, source)
    uploaded = time.perf_counter()
    with httpx.Client(base_url=api, timeout=600) as client:

        def finished() -> dict[str, object] | None:
            job: dict[str, object] = client.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] in ("succeeded", "failed") else None

        job = wait_for(finished, 1800, "batch finished", every=0.05)
        assert job["status"] == "succeeded", job
        scored = time.perf_counter()
    download(api, f"/v1/batches/{job_id}/result", target)
    ended = time.perf_counter()
    steps = {"upload": uploaded - started, "queue + score": scored - uploaded}
    job["client_seconds"] = {**steps, "download": ended - scored}
    return ended - started, job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--semicolon", action="store_true", help="BOM, `;`, decimal commas, CRLF")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--storage", choices=["local", "s3", "both"], default="both")
    parser.add_argument(
        "--processes", default="1,2", help="pool processes of the predict worker, one run each"
    )
    args = parser.parse_args()
    # API and worker sign job ids and models with it; a run of its own needs none given.
    os.environ.setdefault("IRISQ_SECRET_KEY", secrets.token_urlsafe(32))
    with scratch_folder("irisq-bench-", args.keep) as work:
        source = work / "flowers.csv"
        make_csv(source, args.rows, args.semicolon)
        size_mb = source.stat().st_size / 1e6
        print(f"input: {args.rows:,} rows, {size_mb:.1f} MB, {os.cpu_count()} CPUs")
        with redis_server(work / "redis") as redis_url, mlflow_server(work / "mlflow") as mlflow:
            settings = Settings(
                redis_url=redis_url,
                mlflow_tracking_uri=mlflow,
                models_dir=work / "models",
                batch_dir=work / "batches",
                batch_max_bytes=10**10,
                batch_max_rows=10**9,
            )
            from worker.registry import Registry
            from worker.training import train_and_register

            version = train_and_register("logistic_regression", {}, settings).model_version
            estimator = Registry(settings).load(version)
            env = {
                "IRISQ_REDIS_URL": redis_url,
                "IRISQ_MLFLOW_TRACKING_URI": mlflow,
                "IRISQ_BATCH_DIR": str(settings.batch_dir),
                "IRISQ_BATCH_MAX_BYTES": str(settings.batch_max_bytes),
                "IRISQ_BATCH_MAX_ROWS": str(settings.batch_max_rows),
                "IRISQ_BOOTSTRAP_CHAMPION": "false",
            }
            floor_seconds = floor(source, work / "floor.csv", estimator, args.semicolon)
            print(f"floor (pyarrow read + predict_proba + pyarrow write): {floor_seconds:6.2f} s")
            storages = ["local", "s3"] if args.storage == "both" else [args.storage]
            counts = [int(n) for n in args.processes.split(",")]
            runs = {
                (name, n): run(name, n, env, work, source, floor_seconds)
                for name in storages
                for n in counts
            }
        for name in storages:
            for n in counts[1:]:
                ratio = runs[(name, n)] / runs[(name, counts[0])]
                print(f"{name}: {n} processes / {counts[0]}, end to end: {ratio:.2f}")
        if len(storages) == 2:
            n = counts[-1]
            local, s3 = (work / f"result-{name}-{n}.csv" for name in storages)
            same = local.read_bytes() == s3.read_bytes()
            ratio = runs[("s3", n)] / runs[("local", n)]
            print(f"S3 / local folder, end to end: {ratio:.2f} (results byte-identical: {same})")
        results = {(work / f"result-{name}-{n}.csv").read_bytes() for name, n in runs}
        print(f"every run's result byte-identical: {len(results) == 1}")


def run(
    storage: str,
    processes: int,
    env: dict[str, str],
    work: Path,
    source: Path,
    floor_seconds: float,
) -> float:
    """irisq end to end with its batches in `storage` (local or s3) and `processes` pool
    processes; its seconds."""
    name = f"{storage}-{processes}"
    with ExitStack() as running:
        if storage == "s3":
            endpoint = running.enter_context(s3_server(work / f"s3-{processes}"))
            env = {**env, **endpoint.env("irisq-bench")}
        worker = running.enter_context(
            celery_worker("predict", f"bench-{name}", env, work / f"worker-{name}.log", processes)
        )
        api = running.enter_context(api_server(env, work / f"api-{name}.log"))
        wait_for(lambda: len(pool_children(worker.pid)) == processes, 120, "worker pool")
        # Every process has its model: a cold one would load it during the run.
        wait_for(lambda: _models_loaded(work / f"worker-{name}.log") >= processes, 120, "models")
        baseline = max(peak_rss_mb(pid) for pid in pool_children(worker.pid))
        irisq_seconds, job = irisq_end_to_end(api, source, work / f"result-{name}.csv")
        rss = max(peak_rss_mb(pid) for pid in pool_children(worker.pid))
    result = job["result"]
    assert isinstance(result, dict)
    where = "S3 (SeaweedFS)" if storage == "s3" else "a local folder"
    print(f"--- batches in {where}, {processes} pool process(es)")
    print(f"irisq (upload + queue + score + download):            {irisq_seconds:6.2f} s")
    ratio = irisq_seconds / floor_seconds
    print(f"ratio irisq / floor:                                  {ratio:6.2f}")
    steps = job["client_seconds"]
    assert isinstance(steps, dict)
    print("  " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in steps.items()))
    scoring = _seconds(job["started_at"], job["finished_at"])
    print(f"  of which the worker's job (started → finished):     {scoring:6.2f} s")
    print(f"pool process peak RSS (the largest):                  {rss:6.0f} MB")
    print(f"  of which before the job (imports, model):           {baseline:6.0f} MB")
    print(f"rows scored: {result['rows_scored']:,}, counts: {result['counts']}")
    dialect = {k: result.get(k) for k in ("delimiter", "decimal_mark", "line_ending", "bom")}
    print(f"result written as: {dialect}")
    return irisq_seconds


def _models_loaded(log: Path) -> int:
    return log.read_text(errors="replace").count("champion version") if log.exists() else 0


def _seconds(started: object, finished: object) -> float:
    if not isinstance(started, str) or not isinstance(finished, str):
        return float("nan")
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


if __name__ == "__main__":
    main()
