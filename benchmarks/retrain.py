"""Retrain while clients predict: how soon the new champion serves, and what clients saw.

    .venv/bin/python -m benchmarks.retrain [--url http://127.0.0.1:8002] [--trainings 3]
        [--clients 4]

Against a running stack (`make run`'s by default), `--clients` threads loop single-row
predictions (`POST /v1/predictions?wait=10`) from start to end. Meanwhile the script asks
for `--trainings` retrainings one after the other (`POST /v1/training`, each the champion's
own recipe with a different regularisation: scored at least as well, so the gate promotes
it), and for each prints the seconds from the request to the job's end and to the first
prediction answered by the new version. At the end: predictions made, and how many failed
(any answer other than a succeeded job, or an error).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.online import ROW

GOAL_SECONDS = 15.0


@dataclass
class Clients:
    """Threads predicting in a loop; each answer's version and end time, and failures."""

    url: str
    headers: dict[str, str]
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: list[tuple[float, str]] = field(default_factory=list)  # (time, model version)
    failures: list[str] = field(default_factory=list)

    def loop(self) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=30) as client:
            while not self.stop.is_set():
                try:
                    response = client.post("/v1/predictions?wait=10", json={"rows": [ROW]})
                    job = response.json()
                    ok = response.status_code == 200 and job["status"] == "succeeded"
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    ok, job = False, {"error": repr(exc)}
                with self.lock:
                    if ok:
                        self.answered.append((time.monotonic(), job["result"]["model_version"]))
                    else:
                        self.failures.append(str(job)[:300])

    def first_answer_by(self, version: str, after: float) -> float | None:
        with self.lock:
            return next((t for t, v in self.answered if v == version and t >= after), None)


def _train(api: httpx.Client, training: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/training", json=training)
    response.raise_for_status()
    job_url = f"/v1/jobs/{response.json()['job_id']}"
    while True:
        job: dict[str, Any] = api.get(job_url).json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8002")
    parser.add_argument("--key", default=os.environ.get("IRISQ_API_KEY"))
    parser.add_argument("--trainings", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    clients = Clients(args.url, headers)
    threads = [threading.Thread(target=clients.loop) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    worst = 0.0
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=60) as api:
            for n in range(args.trainings):
                training = {"algorithm": "logistic_regression", "params": {"C": 1.0 + n / 100}}
                asked = time.monotonic()
                job = _train(api, training)
                trained = time.monotonic() - asked
                if job["status"] != "succeeded" or not job["result"]["promoted"]:
                    raise RuntimeError(f"training did not promote a champion: {job}")
                version = job["result"]["model_version"]
                while (served := clients.first_answer_by(version, asked)) is None:
                    if time.monotonic() - asked > 120:
                        raise RuntimeError(f"version {version} never served within 120 s")
                    time.sleep(0.05)
                worst = max(worst, served - asked)
                print(
                    f"training {n + 1}: version {version}, job done in {trained:5.2f} s, "
                    f"serving {served - asked:5.2f} s after the request",
                    flush=True,
                )
    finally:
        clients.stop.set()
        for thread in threads:
            thread.join()
    print(
        f"{len(clients.answered) + len(clients.failures):,} predictions from {args.clients} "
        f"looping clients, {len(clients.failures)} failed; the slowest new champion served "
        f"{worst:.2f} s after its request (goal <= {GOAL_SECONDS:.0f} s, 0 failed)"
    )
    for failure in clients.failures[:5]:
        print("  failed:", failure)


if __name__ == "__main__":
    main()
