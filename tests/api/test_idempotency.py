"""`Idempotency-Key` on the three submissions: a retry gets the first job back and nothing is
queued twice; a different request under the same key, or a key still in use, is refused."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from irisq.keys import hash_key, new_key
from irisq.quotas import OwnerKeys
from irisq.settings import ApiKey
from tests.support.stack import SETOSA, VIRGINICA, Stack

ALICE, BOB, ADMIN = new_key(), new_key(), new_key()
KEYS = [
    ApiKey(name="idem-alice", role="predict", sha256=hash_key(ALICE)),
    ApiKey(name="idem-bob", role="predict", sha256=hash_key(BOB)),
    ApiKey(name="idem-ops", role="admin", sha256=hash_key(ADMIN)),
]
CSV = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5\n"


def headers(key: str, idempotency_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": idempotency_key}


@pytest.fixture(scope="module")
def keyed(stack: Stack) -> Iterator[TestClient]:
    settings = stack.settings.model_copy(update={"api_keys": KEYS})
    with TestClient(create_app(settings)) as client:
        yield client


def jobs_of(api: TestClient, owner: str) -> int:
    return int(api.app.state.resources.redis.zcard(OwnerKeys(owner).jobs))  # type: ignore[attr-defined]


def test_20_concurrent_identical_posts_make_one_job(keyed: TestClient) -> None:
    key = str(uuid.uuid4())
    before = jobs_of(keyed, "idem-alice")

    def post() -> tuple[int, str | None, str | None]:
        response = keyed.post(
            "/v1/predictions", json={"rows": [SETOSA]}, headers=headers(ALICE, key)
        )
        body = response.json()
        return response.status_code, body.get("job_id"), response.headers.get("idempotent-replayed")

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(), range(20)))

    assert jobs_of(keyed, "idem-alice") == before + 1
    statuses = Counter(status for status, _, _ in answers)
    assert set(statuses) <= {202, 409}
    assert statuses[202] >= 1
    assert len({job_id for status, job_id, _ in answers if status == 202}) == 1
    first = [a for a in answers if a[0] == 202 and a[2] is None]
    assert len(first) == 1, "one request queued the job, the others were replays or 409s"
    retry = keyed.post("/v1/predictions", json={"rows": [SETOSA]}, headers=headers(ALICE, key))
    assert (retry.status_code, retry.json()["job_id"]) == (202, first[0][1])
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == f"/v1/jobs/{first[0][1]}"


def test_a_replay_that_asks_to_wait_gets_the_finished_job(keyed: TestClient, stack: Stack) -> None:
    key = str(uuid.uuid4())
    first = keyed.post("/v1/predictions", json={"rows": [VIRGINICA]}, headers=headers(ALICE, key))
    stack.wait(first.json()["job_id"])

    again = keyed.post(
        "/v1/predictions?wait=5", json={"rows": [VIRGINICA]}, headers=headers(ALICE, key)
    )

    assert again.status_code == 200
    assert again.json()["job_id"] == first.json()["job_id"]
    assert again.json()["result"]["predictions"][0]["species"] == "virginica"
    assert again.headers["idempotent-replayed"] == "true"


def test_the_same_key_with_another_body_is_422_naming_the_header(keyed: TestClient) -> None:
    key = str(uuid.uuid4())
    keyed.post("/v1/predictions", json={"rows": [SETOSA]}, headers=headers(ALICE, key))

    other = keyed.post("/v1/predictions", json={"rows": [VIRGINICA]}, headers=headers(ALICE, key))
    elsewhere = keyed.post(
        "/v1/predictions?callback_url=https://example.com/hook",
        json={"rows": [SETOSA]},
        headers=headers(ALICE, key),
    )

    for response in (other, elsewhere):
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_keys_are_scoped_per_api_key(keyed: TestClient) -> None:
    key = str(uuid.uuid4())
    alice = keyed.post("/v1/predictions", json={"rows": [SETOSA]}, headers=headers(ALICE, key))
    bob = keyed.post("/v1/predictions", json={"rows": [SETOSA]}, headers=headers(BOB, key))

    assert alice.status_code == bob.status_code == 202
    assert alice.json()["job_id"] != bob.json()["job_id"]
    assert "idempotent-replayed" not in bob.headers


def test_a_refused_request_frees_its_key(keyed: TestClient) -> None:
    key = str(uuid.uuid4())
    bad = keyed.post(
        "/v1/predictions", json={"rows": [{"sepal_length": 1}]}, headers=headers(ALICE, key)
    )
    good = keyed.post("/v1/predictions", json={"rows": [SETOSA]}, headers=headers(ALICE, key))

    assert bad.status_code == 422
    assert good.status_code == 202
    assert "idempotent-replayed" not in good.headers


@pytest.mark.parametrize(
    "value", ["k" * 256, "", "caf\u00e9"], ids=["too long", "empty", "not ascii"]
)
def test_a_malformed_key_is_422_naming_the_header(keyed: TestClient, value: str) -> None:
    response = keyed.post(
        "/v1/predictions",
        json={"rows": [SETOSA]},
        headers={b"Authorization": f"Bearer {ALICE}".encode(), b"Idempotency-Key": value.encode()},
    )

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_an_upload_is_the_same_request_when_its_bytes_are(keyed: TestClient) -> None:
    key = str(uuid.uuid4())
    before = jobs_of(keyed, "idem-alice")

    def upload(content: bytes, filename: str) -> tuple[int, dict[str, str], dict[str, object]]:
        response = keyed.post(
            "/v1/batches",
            files={"file": (filename, content, "text/csv")},
            headers=headers(ALICE, key),
        )
        return response.status_code, dict(response.headers), response.json()

    first = upload(CSV, "a.csv")
    # Another file name and another multipart boundary: the same file all the same.
    again = upload(CSV, "b.csv")
    other = upload(CSV + b"5.9,3.0,5.1,1.8\n", "a.csv")

    assert first[0] == again[0] == 202
    assert again[2]["job_id"] == first[2]["job_id"]
    assert again[1]["idempotent-replayed"] == "true"
    assert other[0] == 422
    assert jobs_of(keyed, "idem-alice") == before + 1


def test_a_retried_training_registers_one_version(keyed: TestClient, stack: Stack) -> None:
    key = str(uuid.uuid4())
    body = {"algorithm": "logistic_regression", "params": {"C": 0.5}}

    def post() -> tuple[int, str]:
        response = keyed.post("/v1/training", json=body, headers=headers(ADMIN, key))
        return response.status_code, str(response.json().get("job_id"))

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(), range(20)))
    job_ids = {job_id for status, job_id in answers if status == 202}
    assert len(job_ids) == 1
    (job_id,) = job_ids
    job = stack.wait(job_id, deadline_seconds=240)
    version = job["result"]["model_version"]

    retry = keyed.post("/v1/training", json=body, headers=headers(ADMIN, key))
    models = keyed.get("/v1/models", headers={"Authorization": f"Bearer {ADMIN}"}).json()

    assert retry.json()["job_id"] == job_id
    registered = [v for v in models["versions"] if v["run_id"] == job["result"]["run_id"]]
    assert [v["version"] for v in registered] == [version]
