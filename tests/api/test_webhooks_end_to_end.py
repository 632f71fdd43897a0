"""`callback_url` from submit to delivery on the whole stack: the API records it, the job's
end schedules it, the callbacks worker (as `make run` starts it) POSTs the signed job."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from devstack.processes import callbacks_worker, free_port, wait_for
from irisq.job_types import FINAL_STATUSES
from tests.support.stack import SETOSA, Stack
from tests.support.webhook_receiver import Receiver, documented_verify, receiving

CSV = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n"


@pytest.fixture(scope="module")
def receiver(stack: Stack) -> Iterator[Receiver]:
    with (
        receiving(free_port()) as listening,
        callbacks_worker(stack.env, stack.logs / "callbacks.log"),
    ):
        yield listening


def test_a_prediction_and_a_batch_are_delivered_signed_once_each(
    stack: Stack, receiver: Receiver
) -> None:
    hook = f"{receiver.url}/irisq"
    prediction = stack.api.post(
        "/v1/predictions", params={"callback_url": hook}, json={"rows": [SETOSA]}
    )
    batch = stack.api.post(
        "/v1/batches",
        params={"callback_url": hook + "?from=batch"},
        files={"file": ("f.csv", CSV, "text/csv")},
    )
    assert prediction.status_code == batch.status_code == 202
    ids = {prediction.json()["job_id"], batch.json()["job_id"]}

    def delivered() -> list[dict[str, object]] | None:
        jobs = [stack.api.get(f"/v1/jobs/{job_id}").json() for job_id in ids]
        done = all(
            job["status"] in FINAL_STATUSES and (job["callback"] or {}).get("state") == "delivered"
            for job in jobs
        )
        return jobs if done else None

    jobs = wait_for(delivered, 60, "both callbacks delivered")

    ours = [d for d in receiver.deliveries if json.loads(d.body)["data"]["job_id"] in ids]
    assert sorted(json.loads(d.body)["data"]["job_id"] for d in ours) == sorted(ids)
    verify = documented_verify()
    secret = os.environ["IRISQ_WEBHOOK_SECRET"]
    assert all(verify(secret, d.headers, d.body) for d in ours)
    by_kind = {json.loads(d.body)["data"]["kind"]: d for d in ours}
    assert by_kind["batch"].path == "/irisq?from=batch"
    assert json.loads(by_kind["prediction"].body)["type"] == "job.succeeded"
    assert json.loads(by_kind["batch"].body)["data"]["result"]["rows_scored"] == 2
    for job in jobs:
        callback = job["callback"]
        assert isinstance(callback, dict)
        assert (callback["attempts"], callback["last_status"]) == (1, 204)
        assert callback["delivered_at"] is not None
