"""DELETE /v1/jobs/{id} on the real stack: the record, the result and the files go, the
key's storage is released, and the id answers 410 from then on."""

from __future__ import annotations

import redis

from irisq.quotas import OwnerKeys
from tests.support.stack import SETOSA, Stack

CSV = b"sepal_length,sepal_width,petal_length,petal_width\n" + b"5.1,3.5,1.4,0.2\n" * 500


def _stored_bytes(stack: Stack, job_id: str) -> float | None:
    with redis.Redis.from_url(stack.settings.redis_url) as client:
        score = client.zscore(OwnerKeys("anonymous").files, job_id)
    return None if score is None else float(score)


def test_deleting_a_scored_batch_removes_its_files_and_releases_its_bytes(stack: Stack) -> None:
    job = stack.batch(CSV)
    assert job["status"] == "succeeded", job
    job_id = job["job_id"]
    folder = stack.settings.batch_dir / job_id
    assert folder.is_dir()
    assert (_stored_bytes(stack, job_id) or 0) > len(CSV)

    deleted = stack.api.delete(f"/v1/jobs/{job_id}")

    assert deleted.status_code == 204, deleted.text
    assert not folder.exists()
    assert _stored_bytes(stack, job_id) is None
    for path in (f"/v1/jobs/{job_id}", f"/v1/batches/{job_id}/result"):
        answer = stack.api.get(path)
        assert answer.status_code == 410, (path, answer.text)


def test_deleting_a_large_prediction_removes_its_result_file(stack: Stack) -> None:
    job = stack.predict([SETOSA] * 500)  # ~60 KB of result: kept in a file, not in Redis
    assert job["status"] == "succeeded", job
    assert len(job["result"]["predictions"]) == 500
    result_file = stack.settings.batch_dir / job["job_id"] / "result.json"
    assert result_file.is_file()

    assert stack.api.delete(f"/v1/jobs/{job['job_id']}").status_code == 204

    assert not result_file.exists()
    assert stack.api.get(f"/v1/jobs/{job['job_id']}").status_code == 410
