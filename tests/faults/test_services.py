"""Redis and MLflow taken away under load: jobs survive, the API says 503, inference goes on."""

from __future__ import annotations

import csv
import io
import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from devstack.processes import mlflow_server, wait_for
from tests.faults.conftest import BOTH_STORAGES, FaultStack, big_csv
from tests.support.stack import SETOSA, VIRGINICA, Stack

pytestmark = pytest.mark.slow

BURST = 300


def submit_burst(faults: FaultStack, count: int) -> list[str]:
    accepted = []
    for i in range(count):
        row = SETOSA if i % 2 else VIRGINICA
        response = faults.api.post("/v1/predictions", json={"rows": [row]})
        assert response.status_code == 202, response.text
        accepted.append(response.json()["job_id"])
    return accepted


def _stop_redis(faults: FaultStack) -> None:
    """kill -9 the fault stack's Redis: no shutdown, no final write of its files."""
    pid = int(faults.redis().info("server")["process_id"])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid), 10, "Redis gone")


def _zombie(pid: int) -> bool:
    return "Z" in Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]


def test_redis_killed_after_a_burst_restarts_from_its_append_only_file(
    fault_stack: FaultStack,
) -> None:
    accepted = submit_burst(fault_stack, BURST)  # no worker yet: all of them wait in Redis
    _stop_redis(fault_stack)
    with fault_stack.restart_redis(), fault_stack.worker("predict", "after-restart"):
        tally = fault_stack.tally("Redis kill -9 after a burst, restarted (AOF)", accepted, 120)
    assert (tally["completed"], tally["lost"], tally["duplicated"]) == (BURST, 0, 0)


def test_tasks_lost_from_the_queue_are_sent_again_by_the_reconciler(
    fault_stack: FaultStack,
) -> None:
    """The window AOF's one-second fsync can lose: records written, their tasks not."""
    accepted = submit_burst(fault_stack, 50)
    fault_stack.redis().delete("predict")
    with fault_stack.worker("predict", "reconciling"):
        tally = fault_stack.tally("queue emptied behind the records (reconciler)", accepted, 60)
    assert (tally["completed"], tally["lost"], tally["duplicated"]) == (50, 0, 0)
    assert fault_stack.log_count("was in no queue: sent it again") == 50


def test_redis_down_at_submit_is_a_quick_503_and_the_api_recovers(
    fault_stack: FaultStack,
) -> None:
    _stop_redis(fault_stack)
    started = time.monotonic()
    response = fault_stack.api.post("/v1/predictions", json={"rows": [SETOSA]})
    elapsed = time.monotonic() - started
    print(f"\nsubmission with Redis down: {response.status_code} in {elapsed * 1000:.0f} ms")
    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert "Redis" in response.json()["detail"]
    assert elapsed < 2.0
    assert fault_stack.api.get("/readyz").status_code == 503

    with fault_stack.restart_redis():
        response = fault_stack.api.post("/v1/predictions", json={"rows": [SETOSA]})
        assert response.status_code == 202, response.text  # the same API process, no restart
        with fault_stack.worker("predict", "after-outage"):
            tally = fault_stack.tally(
                "Redis down at submit (503), then back", [response.json()["job_id"]], 60
            )
    assert (tally["completed"], tally["lost"]) == (1, 0)


def test_predictions_go_on_while_mlflow_is_down_and_training_says_why_it_cannot(
    fault_stack: FaultStack, stack: Stack, var_dir: Path
) -> None:
    """A second MLflow server on the session's registry, so stopping it harms no other test."""
    champion = stack.api.get("/v1/models").json()["champion"]
    accepted: list[str] = []
    with ExitStack() as processes:
        with mlflow_server(var_dir / "mlflow", log=fault_stack.root / "mlflow.log") as mlflow_url:
            env = {"IRISQ_MLFLOW_TRACKING_URI": mlflow_url}
            processes.enter_context(fault_stack.worker("predict", "predict", env))
            processes.enter_context(fault_stack.worker("train", "train", env))
            before = submit_burst(fault_stack, 1)
            first = fault_stack.wait(before[0], 60)
            assert first["status"] == "succeeded", first
            assert first["result"]["model_source"] == "registry"
        # The server is stopped now; the worker's champion check finds it gone.
        accepted += submit_burst(fault_stack, 20)
        jobs = [fault_stack.wait(job_id, 60) for job_id in accepted]
        assert {job["status"] for job in jobs} == {"succeeded"}
        assert {job["result"]["model_version"] for job in jobs} == {champion}
        assert jobs[-1]["result"]["model_source"] == "last_known"

        training = fault_stack.api.post("/v1/training", json={"algorithm": "logistic_regression"})
        failed = fault_stack.wait(training.json()["job_id"], 90)
        assert failed["status"] == "failed"
        assert failed["error"]["type"] == "registry_unavailable"
        # The client is told what failed, not where: the address is for the operator's log.
        assert "cannot be reached, so training" in failed["error"]["message"]
        assert mlflow_url not in failed["error"]["message"]
        assert fault_stack.log_count(f"MLflow server at {mlflow_url} cannot be reached") > 0

    # A worker that starts while MLflow is down has no model in memory: it loads the local
    # copy of the last champion this machine saw.
    with fault_stack.worker("predict", "fresh", {"IRISQ_MLFLOW_TRACKING_URI": mlflow_url}):
        fresh = submit_burst(fault_stack, 5)
        tally = fault_stack.tally("MLflow server stopped (inference)", accepted + fresh, 90)
        last = fault_stack.job(fresh[-1])
        assert (tally["completed"], tally["lost"]) == (25, 0)
        assert (last["result"]["model_version"], last["result"]["model_source"]) == (
            champion,
            "last_known",
        )

        # MLflow back at its address: the workers find it by themselves.
        port = int(mlflow_url.rsplit(":", 1)[1])
        with mlflow_server(var_dir / "mlflow", fault_stack.root / "mlflow-back.log", port):
            back = time.monotonic()
            deadline = back + 90
            source = "last_known"
            while source != "registry" and time.monotonic() < deadline:
                left = max(deadline - time.monotonic(), 1)
                job = fault_stack.wait(submit_burst(fault_stack, 1)[0], left)
                assert job["status"] == "succeeded", job
                source = job["result"]["model_source"]
                time.sleep(0.25)  # a poll's interval, under the deadline
            print(f"\nthe registry served again {time.monotonic() - back:.1f} s after MLflow")
            assert source == "registry"


@BOTH_STORAGES
def test_a_batch_is_scored_by_one_version_even_if_the_champion_moves(
    fault_stack: FaultStack, stack: Stack, tmp_path: Path
) -> None:
    models = stack.api.get("/v1/models").json()
    if len(models["versions"]) < 2:
        assert stack.train("logistic_regression", {"C": 0.05})["status"] == "succeeded"
        models = stack.api.get("/v1/models").json()
    champion = models["champion"]
    other = next(v["version"] for v in models["versions"] if v["version"] != champion)
    content = big_csv(tmp_path / "big.csv", 300_000)
    try:
        with fault_stack.worker("predict", "predict"):
            job_id = fault_stack.upload(content)
            fault_stack.wait_running(job_id, progress=0.05)
            moved = fault_stack.api.post(f"/v1/models/{other}/promote")
            assert moved.status_code == 200, moved.text
            tally = fault_stack.tally("champion moved mid-batch", [job_id], 60)
            job = fault_stack.job(job_id)
    finally:
        assert stack.api.post(f"/v1/models/{champion}/promote").status_code == 200
        stack.serving(champion)
    assert tally["completed"] == 1
    assert job["result"]["model_version"] == champion
    result = fault_stack.api.get(f"/v1/batches/{job_id}/result").text
    versions = {row["model_version"] for row in csv.DictReader(io.StringIO(result))}
    assert versions == {champion}


@BOTH_STORAGES
def test_cancel_stops_a_running_batch_within_a_second_and_leaves_no_files(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", 400_000)
    with fault_stack.worker("predict", "predict"):
        job_id = fault_stack.upload(content)
        fault_stack.wait_running(job_id, progress=0.05)
        assert fault_stack.has_files(job_id)
        started = time.monotonic()
        response = fault_stack.api.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "canceled"
        wait_for(
            lambda: not fault_stack.has_files(job_id), 5, "the batch's files removed", every=0.01
        )
        stopped = time.monotonic() - started
        print(f"\ncanceled batch stopped and cleaned up {stopped * 1000:.0f} ms after DELETE")
        job = fault_stack.job(job_id)
    assert stopped < 1.0
    assert job["status"] == "canceled"
    assert fault_stack.api.get(f"/v1/batches/{job_id}/result").status_code == 409
    assert fault_stack.api.post(f"/v1/jobs/{job_id}/cancel").status_code == 409
