"""The batch storage (SeaweedFS's S3 gateway) taken away: at upload, mid-batch, for good;
and an S3 storage that refuses irisq's credentials."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from devstack.object_storage import S3Server
from devstack.processes import wait_for
from tests.faults.conftest import FaultStack, big_csv
from tests.support.storage import aws_credentials

pytestmark = pytest.mark.slow

ON_S3 = pytest.mark.parametrize("fault_stack", ["s3"], indirect=True)
# A batch may wait and try again for longer than the fault stack's 10 s batch limit allows.
PATIENT = {
    "IRISQ_BATCH_TIME_LIMIT_SECONDS": "120",
    "IRISQ_VISIBILITY_TIMEOUT_SECONDS": "180",
    "IRISQ_STORAGE_WAIT_SECONDS": "90",
}


def _storage(fault_stack: FaultStack) -> S3Server:
    assert fault_stack.s3 is not None
    return fault_stack.s3


def _jobs(fault_stack: FaultStack) -> list[str]:
    response = fault_stack.api.get("/v1/jobs")
    assert response.status_code == 200, response.text
    return [job["job_id"] for job in response.json()["jobs"]]


@ON_S3
def test_storage_down_at_upload_is_a_503_with_retry_after_and_records_nothing(
    fault_stack: FaultStack,
) -> None:
    before = _jobs(fault_stack)
    _storage(fault_stack).kill()

    response = fault_stack.api.post(
        "/v1/batches", files={"file": ("f.csv", big_csv_bytes(1_000), "text/csv")}
    )

    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert "batch storage" in response.json()["detail"]
    assert "127.0.0.1" not in response.text  # no host, port or bucket told to a caller
    assert _jobs(fault_stack) == before
    wait_for(
        lambda: not fault_stack.api.get("/readyz").json()["checks"]["batch_storage"]["ok"],
        10,
        "/readyz naming the batch storage",
    )

    _storage(fault_stack).start()
    again = fault_stack.api.post(
        "/v1/batches", files={"file": ("f.csv", big_csv_bytes(1_000), "text/csv")}
    )
    assert again.status_code == 202, again.text


def big_csv_bytes(rows: int) -> bytes:
    lines = ["sepal_length,sepal_width,petal_length,petal_width"] + ["5.1,3.5,1.4,0.2"] * rows
    return ("\n".join(lines) + "\n").encode()


@ON_S3
def test_storage_killed_mid_batch_the_batch_waits_and_completes_byte_identical(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", 400_000)
    with fault_stack.worker("predict", "predict", PATIENT):
        clean = fault_stack.wait(fault_stack.upload(content), 60)
        assert clean["status"] == "succeeded", clean
        expected = fault_stack.api.get(f"/v1/batches/{clean['job_id']}/result").content

        job_id = fault_stack.upload(content)
        fault_stack.wait_running(job_id, progress=0.05)
        _storage(fault_stack).kill()
        waiting = wait_for(
            lambda: "waiting for the batch storage" in (fault_stack.job(job_id).get("stage") or ""),
            60,
            "the batch waiting for its storage",
            every=0.1,
        )
        assert waiting
        assert fault_stack.job(job_id)["status"] == "running"
        _storage(fault_stack).start()
        job = fault_stack.wait(job_id, 120)

    assert job["status"] == "succeeded", job
    result = fault_stack.api.get(f"/v1/batches/{job_id}/result")
    assert result.status_code == 200
    assert result.content == expected  # nothing of the broken try mixed in


@ON_S3
def test_storage_that_stays_away_fails_the_batch_as_storage_unavailable(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    content = big_csv(tmp_path / "big.csv", 400_000)
    quick = {**PATIENT, "IRISQ_STORAGE_ATTEMPTS": "2", "IRISQ_STORAGE_WAIT_SECONDS": "2"}
    with fault_stack.worker("predict", "predict", quick):
        job_id = fault_stack.upload(content)
        fault_stack.wait_running(job_id, progress=0.05)
        _storage(fault_stack).kill()
        job = fault_stack.wait(job_id, 90)

    assert job["status"] == "failed", job
    assert job["error"]["type"] == "storage_unavailable"
    assert "2 tries" in job["error"]["message"]
    assert "127.0.0.1" not in job["error"]["message"]
    _storage(fault_stack).start()
    assert fault_stack.api.get(f"/v1/batches/{job_id}/result").status_code == 409


def test_wrong_credentials_keep_the_api_from_starting(
    fault_stack: FaultStack, tmp_path: Path
) -> None:
    server = S3Server(tmp_path / "other-s3")
    try:
        endpoint = server.start()
        settings = fault_stack.settings.model_copy(
            update={
                "batch_storage_url": "s3://irisq-wrong-keys/batches",
                "s3_endpoint_url": endpoint.url,
            }
        )
        wrong = "not-" + endpoint.secret_key
        with (
            aws_credentials(endpoint, secret=wrong),
            pytest.raises(RuntimeError) as refused,
            TestClient(create_app(settings)),
        ):
            pass
    finally:
        server.stop()
    message = str(refused.value)
    assert "refused the credentials" in message
    assert "s3://irisq-wrong-keys/batches" in message  # the operator is told which storage
    assert wrong not in message
    assert endpoint.secret_key not in message
