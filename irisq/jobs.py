"""Job records: our own account of every accepted job, kept in Redis.

Celery reports any id it does not know as PENDING, so it cannot tell "queued" from "never
existed". The record is written before the task is sent and updated by the worker; each
record is one Redis hash so that progress updates are single atomic writes, never a
read-modify-write of the whole record.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis
from pydantic import BaseModel, Field
from redis.typing import EncodableT, FieldT

# What one HSET writes: field name → text, in the types redis-py declares.
Fields = dict[FieldT, EncodableT]

KEY_PREFIX = "irisq:job:"


class JobKind(StrEnum):
    """What a job does."""

    PREDICTION = "prediction"
    BATCH = "batch"
    TRAINING = "training"


class JobStatus(StrEnum):
    """Where a job is in its life; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})


class JobError(BaseModel):
    """Why a job failed, in words a person can act on."""

    type: str
    message: str
    details: list[dict[str, Any]] | None = Field(
        None, description="Itemised problems, e.g. the first bad cells of a refused CSV."
    )


class Job(BaseModel):
    """A job as clients see it on `GET /v1/jobs/{job_id}`."""

    job_id: str
    kind: JobKind
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    stage: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: JobError | None = None


def _now() -> str:
    return datetime.now(UTC).isoformat()


_UPDATE_EXISTING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
# ARGV: the final statuses, "|", then field/value pairs.
_START_IF_NOT_FINAL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
local i = 1
while ARGV[i] ~= '|' do
  if ARGV[i] == status then return 0 end
  i = i + 1
end
redis.call('HSET', KEYS[1], unpack(ARGV, i + 1))
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 1
"""


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def new_job_id() -> str:
    """A random, unguessable job id."""
    return str(uuid.uuid4())


class JobStore:
    """Reads and writes job records; shared by the API (create, read) and workers (update)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        # Updates are scripts so that they touch only a record that exists: a plain HSET
        # on an expired job would leave a half record behind, with no expiry.
        self._update = client.register_script(_UPDATE_EXISTING)
        self._start = client.register_script(_START_IF_NOT_FINAL)

    @property
    def redis(self) -> redis.Redis:
        return self._redis

    @staticmethod
    def key(job_id: str) -> str:
        return KEY_PREFIX + job_id

    def create(self, kind: JobKind, job_id: str | None = None) -> Job:
        """Record a new queued job (before its task is sent)."""
        job_id = job_id or new_job_id()
        fields: Fields = {
            "job_id": job_id,
            "kind": kind.value,
            "status": JobStatus.QUEUED.value,
            "progress": "0",
            "created_at": _now(),
            "attempts": "0",
        }
        key = self.key(job_id)
        with self._redis.pipeline() as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self._ttl)
            pipe.execute()
        return Job.model_validate(fields)

    def get(self, job_id: str) -> Job | None:
        """The job, or None when no such job exists (or it has expired)."""
        fields = self._redis.hgetall(self.key(job_id))
        if not fields:
            return None
        record: dict[str, Any] = {as_text(k): as_text(v) for k, v in fields.items()}
        for name in ("result", "error"):
            if name in record:
                record[name] = json.loads(record[name])
        return Job.model_validate(record)

    def start(self, job_id: str, stage: str | None = None) -> bool:
        """Mark the job running and count the attempt; False if the job is gone or final."""
        fields: list[str] = ["status", JobStatus.RUNNING.value, "started_at", _now()]
        if stage:
            fields += ["stage", stage]
        finals = [status.value for status in FINAL_STATUSES]
        return bool(self._start(keys=[self.key(job_id)], args=[*finals, "|", *fields]))

    def progress(self, job_id: str, progress: float, stage: str | None = None) -> None:
        """Report how far a running job has come (0..1) and, optionally, its stage."""
        fields: list[str] = ["progress", repr(min(max(progress, 0.0), 1.0))]
        if stage:
            fields += ["stage", stage]
        self._update(keys=[self.key(job_id)], args=fields)

    def succeed(self, job_id: str, result: dict[str, Any]) -> None:
        """Store the result and mark the job succeeded."""
        self._finish(
            job_id, JobStatus.SUCCEEDED, result=json.dumps(result), progress="1", stage="done"
        )

    def fail(
        self,
        job_id: str,
        error_type: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        """Mark the job failed with a reason a person can read."""
        error = json.dumps({"type": error_type, "message": message, "details": details})
        self._finish(job_id, JobStatus.FAILED, error=error)

    def _finish(self, job_id: str, status: JobStatus, **extra: str) -> None:
        key = self.key(job_id)
        if not self._redis.exists(key):  # expired meanwhile: never resurrect half a record
            return
        fields: Fields = {"status": status.value, "finished_at": _now()}
        fields.update(extra)
        with self._redis.pipeline() as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, self._ttl)
            pipe.execute()
