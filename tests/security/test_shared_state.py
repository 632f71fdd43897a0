"""No key can exhaust shared state: quotas per key, admission before Redis is full, large
results outside Redis, and finished jobs trimmed per key. Real Redis, real workers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.main import create_app
from devstack.processes import celery_worker, redis_server, wait_for
from irisq.job_types import FINAL_STATUSES, JobKind
from irisq.jobs import JobStore
from irisq.keys import hash_key, new_key
from irisq.quotas import OwnerKeys
from irisq.settings import ApiKey, Settings
from tests.security.conftest import bearer
from tests.support.stack import SETOSA, VIRGINICA, Stack
from worker.retention import Retention

pytestmark = pytest.mark.slow

FLOOD_ROWS = [SETOSA, VIRGINICA] * 5_000  # 10,000 rows: the most one request may carry


@dataclass
class Private:
    """A private Redis (with its own maxmemory), an API on it with two keys, and workers."""

    root: Path
    settings: Settings
    env: dict[str, str]
    api: TestClient
    keys: dict[str, str]

    @property
    def redis(self) -> redis.Redis:
        client: redis.Redis = self.api.app.state.resources.redis  # type: ignore[attr-defined]
        return client

    def post(self, who: str, rows: list[dict[str, float]]) -> Any:
        return self.api.post("/v1/predictions", json={"rows": rows}, headers=bearer(self.keys[who]))

    def get(self, who: str, job_id: str) -> Any:
        return self.api.get(f"/v1/jobs/{job_id}", headers=bearer(self.keys[who]))

    @contextmanager
    def worker(self) -> Iterator[None]:
        with celery_worker("predict", "predict", self.env, self.root / "predict.log"):
            yield

    def wait_all(self, who: str, job_ids: list[str], deadline_seconds: float) -> list[str]:
        """Every job's final status, waiting for each."""

        def final(job_id: str) -> str | None:
            status = str(self.get(who, job_id).json()["status"])
            return status if status in FINAL_STATUSES else None

        return [
            wait_for(lambda j=job_id: final(j), deadline_seconds, f"job {job_id}")  # type: ignore[misc]
            for job_id in job_ids
        ]


@contextmanager
def private_stack(
    stack: Stack, tmp_path: Path, maxmemory: str, **settings: Any
) -> Iterator[Private]:
    secrets = {"alice": new_key(), "bob": new_key()}
    keys = [ApiKey(name=n, role="predict", sha256=hash_key(s)) for n, s in secrets.items()]
    with redis_server(tmp_path / "redis", maxmemory=maxmemory) as url:
        configured = stack.settings.model_copy(
            update={
                "redis_url": url,
                "models_dir": tmp_path / "models",
                "batch_dir": tmp_path / "batches",
                "api_keys": keys,
                "rate_limit_per_second": 0,
                **settings,
            }
        )
        env = {
            **stack.env,
            "IRISQ_REDIS_URL": url,
            "IRISQ_MODELS_DIR": str(configured.models_dir),
            "IRISQ_BATCH_DIR": str(configured.batch_dir),
        }
        with TestClient(create_app(configured)) as api:
            yield Private(tmp_path, configured, env, api, secrets)


def test_one_key_flooding_meets_its_quota_and_others_go_on(stack: Stack, tmp_path: Path) -> None:
    with private_stack(stack, tmp_path, "256mb", quota_rows_in_flight=100_000) as private:
        accepted, refused = [], None
        for _ in range(50):  # no worker yet: everything stays in flight
            answer = private.post("alice", FLOOD_ROWS)
            if answer.status_code != 202:
                refused = answer
                break
            accepted.append(answer.json()["job_id"])
        bob = private.post("bob", [SETOSA])
        alice_reads = private.get("alice", accepted[0])
        alice_cancels = private.api.post(
            f"/v1/jobs/{accepted[-1]}/cancel", headers=bearer(private.keys["alice"])
        )
        with private.worker():
            statuses = private.wait_all("alice", accepted, 180)
            bob_done = private.wait_all("bob", [bob.json()["job_id"]], 60)
            again = private.post("alice", FLOOD_ROWS)  # her jobs ended: room again
            first = private.get("alice", accepted[0]).json()
        record = private.redis.hgetall(JobStore.key(accepted[0]))
    print(f"\nflood by one key: {len(accepted)} accepted, then {refused and refused.status_code}")

    assert refused is not None
    assert refused.status_code == 429
    assert "rows queued or running" in refused.json()["detail"]
    assert len(accepted) == 10  # 100,000 rows in flight: the quota
    assert bob.status_code == 202  # another key is not affected
    assert (alice_reads.status_code, alice_cancels.status_code) == (200, 200)
    assert statuses == ["succeeded"] * 9 + ["canceled"]  # every accepted job ended
    assert bob_done == ["succeeded"]
    assert again.status_code == 202
    # 10,000 rows of results (~1.2 MB) are read from a file, not kept in Redis.
    assert len(first["result"]["predictions"]) == 10_000
    assert b"result" not in record
    assert record[b"result_in_file"] == b"1"


def test_admission_refuses_new_work_before_redis_is_full(stack: Stack, tmp_path: Path) -> None:
    """Quotas set out of the way: what stops the flood is admission, with headroom left."""
    with private_stack(
        stack,
        tmp_path,
        "32mb",
        quota_rows_in_flight=10_000_000,
        quota_jobs_in_flight=100_000,
    ) as private:
        bob_job = private.post("bob", [SETOSA]).json()["job_id"]
        accepted, refused = [], None
        for _ in range(500):
            answer = private.post("alice", FLOOD_ROWS)
            if answer.status_code != 202:
                refused = answer
                break
            accepted.append(answer.json()["job_id"])
        memory = private.redis.info("memory")
        bob_reads = private.get("bob", bob_job)
        bob_cancels = private.api.post(
            f"/v1/jobs/{bob_job}/cancel", headers=bearer(private.keys["bob"])
        )
        alice_reads = private.get("alice", accepted[-1])
        with private.worker():
            statuses = private.wait_all("alice", accepted, 300)
            readmitted = wait_for(
                lambda: private.post("bob", [SETOSA]).status_code == 202,
                60,
                "admission reopened",
            )
        oom_errors = private.redis.info("errorstats").get("errorstat_OOM", {}).get("count", 0)
    used = int(memory["used_memory"]) / int(memory["maxmemory"])
    print(
        f"\nflood to admission: {len(accepted)} accepted, then "
        f"{refused and refused.status_code} at {used:.0%} of maxmemory; "
        f"{statuses.count('succeeded')} completed, OOM errors {oom_errors}"
    )

    assert refused is not None
    assert refused.status_code == 503
    assert refused.headers["Retry-After"].isdigit()
    assert "full" in refused.json()["detail"]
    assert used < 0.95  # refused with headroom left
    assert (bob_reads.status_code, bob_cancels.status_code, alice_reads.status_code) == (
        200,
        200,
        200,
    )
    assert statuses == ["succeeded"] * len(accepted)  # nothing accepted was lost
    assert readmitted
    assert oom_errors == 0  # Redis itself never had to refuse a write


def test_a_key_keeps_at_most_its_quota_of_finished_jobs(stack: Stack, tmp_path: Path) -> None:
    with private_stack(stack, tmp_path, "256mb", quota_stored_jobs=5) as private:
        with private.worker():
            jobs = [private.post("alice", [SETOSA]).json()["job_id"] for _ in range(8)]
            private.wait_all("alice", jobs, 60)
        kept_before = private.redis.zcard(OwnerKeys("alice").jobs)
        store = JobStore(private.redis, private.settings.job_ttl_seconds)
        removed = Retention(private.settings, store).run()
        codes = [private.get("alice", job_id).status_code for job_id in jobs]

    assert kept_before == 8
    assert removed == 3
    assert codes == [410] * 3 + [200] * 5  # the oldest went first; their ids say "gone"


def test_under_memory_pressure_the_oldest_finished_jobs_go(stack: Stack, tmp_path: Path) -> None:
    with private_stack(stack, tmp_path, "16mb", redis_admission_fraction=0.5) as private:
        store = JobStore(private.redis, private.settings.job_ttl_seconds)
        ids = private.api.app.state.resources.job_ids  # type: ignore[attr-defined]
        while int(private.redis.info("memory")["used_memory"]) < 0.6 * 16 * 2**20:
            job_id = ids.new("alice")
            store.create_many(
                JobKind.PREDICTION,
                {job_id: None},
                {job_id: "alice"},
            )
            store.start(job_id)
            store.succeed(job_id, padded_result(12_000))
        queued = ids.new("alice")
        store.create_many(
            JobKind.PREDICTION,
            {queued: None},
            {queued: "alice"},
        )
        started = time.monotonic()
        removed = Retention(private.settings, store).run()
        seconds = time.monotonic() - started
        used = int(private.redis.info("memory")["used_memory"]) / (16 * 2**20)
        still_queued = store.get(queued)
    print(f"\nmemory pressure: {removed} finished jobs removed in {seconds:.2f} s, now {used:.0%}")

    assert removed > 0
    assert used < 0.5
    assert still_queued is not None  # jobs in flight are never removed


def test_a_key_cannot_store_more_bytes_than_its_quota(stack: Stack, tmp_path: Path) -> None:
    row = b"5.1,3.5,1.4,0.2\n"
    upload = b"sepal_length,sepal_width,petal_length,petal_width\n" + row * 4_000  # 64 KB
    with private_stack(stack, tmp_path, "256mb", quota_stored_bytes=200_000) as private:

        def send(who: str, content: bytes) -> Any:
            return private.api.post(
                "/v1/batches",
                files={"file": ("f.csv", content, "text/csv")},
                headers=bearer(private.keys[who]),
            )

        first = send("alice", upload)
        with private.worker():
            private.wait_all("alice", [first.json()["job_id"]], 60)
        stored = int(private.redis.hget(OwnerKeys("alice").usage, "bytes") or 0)
        refused = send("alice", upload)
        bob = send("bob", upload)
        folders = sorted(p.name for p in private.settings.batch_dir.iterdir())
    print(
        f"\nstored-bytes quota: {stored:,} bytes stored after one batch; then {refused.status_code}"
    )

    assert first.status_code == 202
    assert stored > len(upload)  # the upload and its result, both counted
    assert refused.status_code == 429
    assert "quota is 200,000 bytes" in refused.json()["detail"]
    assert bob.status_code == 202  # per key
    assert len(folders) == 2  # the refused upload left nothing behind


def padded_result(size: int) -> str:
    """A prediction result's JSON of about `size` bytes (the padding field is ignored)."""
    result = {"kind": "prediction", "model_version": "1", "model_source": "registry"}
    return json.dumps({**result, "predictions": [], "padding": "x" * size})


def test_while_redis_is_full_nothing_new_is_accepted_and_the_rest_still_works(
    stack: Stack, tmp_path: Path
) -> None:
    """Redis over its maxmemory, as when another application sharing it has filled it: it
    refuses every write but those irisq's end-of-job scripts may make. A submission is
    refused whole with a 503, a job can still be read, canceled and deleted, and the
    per-key rate limit still holds, kept in the API process meanwhile."""
    with private_stack(stack, tmp_path, "16mb", rate_limit_per_second=10) as private:
        queued = private.post("alice", [SETOSA])
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job_id"]
        # Its limit set to half what it holds: over it whatever its buffers do meanwhile (at
        # the limit exactly, a client's freed buffer lets the next write in).
        used = int(private.redis.info("memory")["used_memory"])
        private.redis.config_set("maxmemory", used // 2)
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            private.redis.set("other-application:one-more", b"x")
        keys_when_full = private.redis.dbsize()

        refused = private.post("alice", [SETOSA])
        keys_after = private.redis.dbsize()
        read = private.get("alice", job_id)
        canceled = private.api.post(
            f"/v1/jobs/{job_id}/cancel", headers=bearer(private.keys["alice"])
        )
        deleted = private.api.delete(f"/v1/jobs/{job_id}", headers=bearer(private.keys["alice"]))
        gone = private.get("alice", job_id)
        started = time.monotonic()
        bob = [private.get("bob", job_id).status_code for _ in range(40)]
        elapsed = time.monotonic() - started

        private.redis.config_set("maxmemory", "16mb")
        again = wait_for(
            lambda: (answer := private.post("alice", [SETOSA])).status_code == 202 and answer,
            30,
            "submissions accepted once Redis has room",
        )

    allowed = len(bob) - bob.count(429)
    print(f"\nRedis over its maxmemory: {allowed} of bob's 40 reads let in, in {elapsed:.2f} s")
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"].isdigit()
    assert "full" in refused.json()["detail"]
    assert keys_after == keys_when_full  # the refused submission recorded nothing
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "queued"
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert deleted.status_code == 204, deleted.text
    assert gone.status_code == 410  # deleted, and said so
    assert 404 in bob  # another key's job: not bob's to see, as when Redis has room
    assert 429 in bob  # the limit holds while Redis is full: a burst of 10, then 10 a second
    assert allowed <= 10 + 10 * elapsed + 1
    assert again.json()["status"] == "queued"
