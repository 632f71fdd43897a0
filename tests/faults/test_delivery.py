"""Workers killed, stalled and replaced mid-job: every accepted job completes, once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from devstack.processes import wait_for
from tests.faults.conftest import BOTH_STORAGES, FaultStack, big_csv, kill_group

pytestmark = pytest.mark.slow


@BOTH_STORAGES
def test_a_worker_killed_mid_batch_leaves_the_job_to_the_next_one(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", 400_000)
    with fault_stack.worker("predict", "doomed") as doomed:
        # A clean run first, on the same worker: what the redone job must write, byte for byte.
        clean = fault_stack.wait(fault_stack.upload(content), 60)
        assert clean["status"] == "succeeded", clean
        expected = fault_stack.api.get(f"/v1/batches/{clean['job_id']}/result").content
        job_id = fault_stack.upload(content)
        fault_stack.wait_running(job_id, progress=0.05)
        kill_group(doomed, signal.SIGKILL)  # the worker and its pool: no goodbye, no ack
        doomed.wait()
    assert fault_stack.job(job_id)["status"] == "running"  # nobody left to finish it

    with fault_stack.worker("predict", "replacement"):
        tally = fault_stack.tally("worker SIGKILLed mid-batch, replaced", [job_id], 60)
    job = fault_stack.job(job_id)
    assert (tally["lost"], tally["duplicated"], job["status"]) == (0, 0, "succeeded")
    assert job["attempts"] == 2
    result = fault_stack.api.get(f"/v1/batches/{job_id}/result").content
    assert result == expected  # byte for byte what the clean run wrote


def test_a_training_worker_stalled_past_the_visibility_timeout_registers_one_version(
    fault_stack: FaultStack,
) -> None:
    """SIGSTOP: the task looks abandoned, Redis hands it to the other worker; then the
    stalled one wakes up and carries on. One result, one model version."""
    with (
        fault_stack.worker("train", "train-a") as first,
        fault_stack.worker("train", "train-b") as second,
    ):
        fault_stack.wait_worker_ready("train")
        response = fault_stack.api.post(
            "/v1/training",
            json={"algorithm": "random_forest", "params": {"n_estimators": 50}},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        fault_stack.wait_running(job_id)
        first_log = fault_stack.worker_logs[-2]
        holder = first if f"irisq.train[{job_id}] received" in first_log.read_text() else second
        kill_group(holder, signal.SIGSTOP)
        try:
            assert fault_stack.job(job_id)["status"] == "running", "finished before the stall"
            tally = fault_stack.tally("train worker SIGSTOPped past visibility", [job_id], 90)
        finally:
            kill_group(holder, signal.SIGCONT)
        # The stalled delivery resumes, finds the job's version and the job final: it drops
        # its own outcome instead of storing a second one.
        wait_for(
            lambda: fault_stack.log_count(rf"result was dropped \[job {job_id}\]"),
            60,
            "the resumed delivery to finish",
        )
        job = fault_stack.job(job_id)
    client = MlflowClient(fault_stack.settings.mlflow_tracking_uri)
    versions = client.search_model_versions(f"name = 'iris' and tags.`irisq.job_id` = '{job_id}'")
    assert (tally["lost"], tally["duplicated"], job["status"]) == (0, 0, "succeeded")
    assert job["attempts"] == 2
    assert [str(v.version) for v in versions] == [job["result"]["model_version"]]


def _pool_children(worker_pid: int) -> list[int]:
    children = Path(f"/proc/{worker_pid}/task/{worker_pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_a_job_that_keeps_killing_its_worker_fails_after_three_attempts(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    """The pool process dies under the job three times (as an out-of-memory kill would):
    the worker re-queues it each time, and the fourth delivery gives up with a reason."""
    content = big_csv(tmp_path / "big.csv", 400_000)
    with fault_stack.worker("predict", "killer") as worker:
        job_id = fault_stack.upload(content)
        for attempt in (1, 2, 3):
            wait_for(
                lambda a=attempt: (  # type: ignore[misc]
                    (job := fault_stack.job(job_id))["status"] == "running" and job["attempts"] == a
                ),
                60,
                f"attempt {attempt} running",
                every=0.02,
            )
            for child in _pool_children(worker.pid):
                os.kill(child, signal.SIGKILL)
        job = fault_stack.wait(job_id, 60)
    assert job["status"] == "failed"
    assert job["error"]["type"] == "too_many_attempts"
    assert "3 times" in job["error"]["message"]
    assert job["attempts"] == 4  # the fourth delivery only recorded that it gave up
