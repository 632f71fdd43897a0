"""A large batch in parts on real workers: every pool process scores parts, and the result is
byte for byte the file scored whole, through progress, cancel, a refused row and killed
processes. (Cutting and putting together on their own: tests/worker/test_batch_parts.py.)"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from devstack.processes import wait_for
from tests.faults.conftest import FaultStack, big_csv
from tests.support.stack import SETOSA
from worker.batch import BatchScorer
from worker.registry import Registry

pytestmark = pytest.mark.slow

PARTS = {"IRISQ_BATCH_PART_BYTES": str(256 << 10)}  # ~17,000 rows a part
ROWS = 400_000  # ~6 MB: ~24 parts


def _children(pid: int) -> list[int]:
    """The pool processes of a worker (their parent is its main process)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _scored_whole(fault_stack: FaultStack, source: Path, version: str) -> bytes:
    """The file scored whole by one process, as a batch no larger than a part is."""
    estimator = Registry(fault_stack.settings).load(version)
    result = io.BytesIO()
    BatchScorer(estimator, version, False, lambda rows: None).score(source, result, io.BytesIO())
    return result.getvalue()


@contextmanager
def _parts_worker(fault_stack: FaultStack) -> Iterator[subprocess.Popen[bytes]]:
    """A predict worker with two pool processes and small parts, ready for uploads."""
    with fault_stack.worker("predict", "parts", PARTS, concurrency=2) as worker:
        fault_stack.wait_worker_ready("predict")
        yield worker


def _ledger_keys(fault_stack: FaultStack, job_id: str) -> list[bytes]:
    return list(fault_stack.redis().scan_iter(f"irisq:batch:{job_id}:*"))


def test_parts_on_two_processes_give_the_whole_files_result_with_progress(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", ROWS)

    with _parts_worker(fault_stack):
        job_id = fault_stack.upload(content)
        seen = [fault_stack.wait_running(job_id, progress=0.1)["progress"]]
        seen.append(fault_stack.wait_running(job_id, progress=seen[0] + 0.1)["progress"])
        job = fault_stack.wait(job_id, 120)

    assert job["status"] == "succeeded", job
    assert (job["result"]["rows_scored"], job["attempts"]) == (ROWS, 1)
    expected = _scored_whole(fault_stack, tmp_path / "big.csv", job["result"]["model_version"])
    assert fault_stack.api.get(f"/v1/batches/{job_id}/result").content == expected
    assert seen[0] < seen[1] < 1.0
    cut = fault_stack.log_count(rf"batch cut into (\d+) parts \[job {job_id}\]")
    pools = {  # which pool process scored each part
        match.group(1)
        for log in fault_stack.worker_logs
        for match in re.finditer(
            rf"rows read in .* by process (\d+) \[job {job_id}\]", log.read_text()
        )
    }
    assert (cut, len(pools)) == (1, 2), pools  # both processes scored parts
    names = sorted(p.name for p in (fault_stack.settings.batch_dir / job_id).iterdir())
    assert names == ["input.csv", "result.csv"]  # the parts' files are gone
    assert _ledger_keys(fault_stack, job_id) == []


def test_a_pool_process_killed_mid_part_has_its_part_scored_again(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", ROWS)

    with _parts_worker(fault_stack) as worker:
        job_id = fault_stack.upload(content)
        fault_stack.wait_running(job_id, progress=0.2)
        victim = _children(worker.pid)[0]
        os.kill(victim, signal.SIGKILL)  # mid-part: no outcome, no ack
        job = fault_stack.wait(job_id, 120)

    assert job["status"] == "succeeded", job
    expected = _scored_whole(fault_stack, tmp_path / "big.csv", job["result"]["model_version"])
    assert fault_stack.api.get(f"/v1/batches/{job_id}/result").content == expected
    assert fault_stack.log_count(rf"job succeeded \[job {job_id}\]") == 1


def test_a_bad_row_in_a_late_part_refuses_the_file_and_leaves_no_output(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", ROWS)
    lines = content.split(b"\n")
    lines[300_001] = b"5.1,3.5,-1,0.2"  # line 300,002
    content = b"\n".join(lines)

    with _parts_worker(fault_stack):
        job = fault_stack.wait(fault_stack.upload(content), 120)

    assert job["status"] == "failed", job
    assert "line 300002, column 'petal_length'" in job["error"]["message"]
    assert job["error"]["details"][0]["line"] == 300_002
    names = sorted(p.name for p in (fault_stack.settings.batch_dir / job["job_id"]).iterdir())
    assert names == ["input.csv"]
    wait_for(lambda: not _ledger_keys(fault_stack, job["job_id"]), 10, "the ledger forgotten")


def test_cancel_stops_every_part_and_leaves_no_files(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", ROWS)
    with _parts_worker(fault_stack):
        job_id = fault_stack.upload(content)
        fault_stack.wait_running(job_id, progress=0.1)
        response = fault_stack.api.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code == 200, response.text
        wait_for(lambda: not fault_stack.has_files(job_id), 30, "the batch's files removed")
        wait_for(lambda: not _ledger_keys(fault_stack, job_id), 30, "the ledger forgotten")
        # the processes are free again: a prediction is answered
        answer = fault_stack.api.post("/v1/predictions?wait=20", json={"rows": [SETOSA]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded"
    assert fault_stack.job(job_id)["status"] == "canceled"
    assert fault_stack.log_count(rf"rows read in .* \[job {job_id}\]") < 20  # of ~24
