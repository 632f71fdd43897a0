"""Job records: our own account of every accepted job, kept in Redis.

Celery reports any id it does not know as PENDING, so it cannot tell "queued" from "never
existed". The record is written before the task is sent and updated by the worker; each
record is one Redis hash so that progress updates are single atomic writes, never a
read-modify-write of the whole record. Every change of status is a Lua script, so that two
deliveries of one task (Redis re-delivers a task whose worker vanished) store one result.

Beside each record: the task to send again if the queue lost it (the reconciler's job), an
index of queued and running jobs, and the owner's usage (irisq.quotas). An expired job is
told from an unknown one by its id (irisq.ids), so nothing is kept per job after its record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from redis.typing import EncodableT, FieldT

from irisq.job_types import CallbackState, Job, JobKind, JobStatus
from irisq.quotas import OWNER_PREFIX, RELEASE_IN_FLIGHT, SET_STORED, queue_admit

# What one HSET writes: field name → text, in the types redis-py declares.
Fields = dict[FieldT, EncodableT]

KEY_PREFIX = "irisq:job:"
# Every job that ends is announced here, so waiting requests need not poll (see _ANNOUNCE).
DONE_CHANNEL = "irisq:jobs:done"
ANNOUNCED_RECORD_MAX_BYTES = 64 * 1024
QUEUED_INDEX = "irisq:jobs:queued"  # job id → when it was queued (epoch seconds)
RUNNING_INDEX = "irisq:jobs:running"  # job id → when its current attempt started
# Every job whose record is kept, by creation time: what an admin lists (irisq.listing).
# Each owner's own jobs are in its `jobs` set (irisq.quotas). The reconciler drops entries
# whose records expired (worker.retention), deleting a job drops its entry.
ALL_JOBS_INDEX = "irisq:jobs:all"
# Each running batch or training's progress, as a capped stream per job (the events that
# `GET /v1/jobs/{id}/events` replays from a Last-Event-ID), announced on PROGRESS_CHANNEL
# by job id. Predictions write none: they only start and end.
EVENTS_PREFIX = "irisq:events:"
PROGRESS_CHANNEL = "irisq:jobs:progress"
EVENTS_KEPT = 200  # per job: a batch reports ~1 per 65,536 rows, a training ~6 stages
# Jobs whose final status awaits delivery to their callback_url, by when to try next
# (worker.callbacks delivers them; the job's `callback` field says how it went).
CALLBACKS_DUE = "irisq:callbacks:due"
# A record field saying the result is in a file beside the batch files (it was too large to
# keep in Redis); the API reads it from there.
RESULT_IN_FILE = "result_in_file"
# A record field set when a job ends: the bytes its files take, counted against its owner.
STORED_BYTES = "stored_bytes"


class StartOutcome(StrEnum):
    """What happened when a worker tried to start a job."""

    STARTED = "started"
    SKIPPED = "skipped"  # unknown, expired, already finished or canceled
    GAVE_UP = "gave_up"  # delivered too many times: now failed


@dataclass(frozen=True)
class ResultFile:
    """A result written to a file (irisq.results) because it is too large for Redis."""

    size: int


def _success(result: str | ResultFile, stored_bytes: int | None = None) -> dict[str, str]:
    """The fields a succeeded job's record gets: its result, or that its result is in a file
    (which then counts with the job's other files against its owner's stored bytes)."""
    fields = {"progress": "1", "stage": "done"}
    if isinstance(result, ResultFile):
        fields[RESULT_IN_FILE] = "1"
        fields[STORED_BYTES] = str((stored_bytes or 0) + result.size)
        return fields
    fields["result"] = result
    if stored_bytes is not None:
        fields[STORED_BYTES] = str(stored_bytes)
    return fields


def _now() -> str:
    return datetime.now(UTC).isoformat()


# Announces a job's end on DONE_CHANNEL: its whole record as a JSON array of field/value
# pairs, so a waiting request needs no read of its own, or only its id when the record is
# large (a 10,000-row result), which a waiting request then reads.
_ANNOUNCE = f"""
local function announce(key, job_id)
  local record = redis.call('HGETALL', key)
  local size = 0
  for i = 2, #record, 2 do size = size + #record[i] end
  if size <= {ANNOUNCED_RECORD_MAX_BYTES} then
    redis.call('PUBLISH', '{DONE_CHANNEL}', cjson.encode(record))
  else
    redis.call('PUBLISH', '{DONE_CHANNEL}', job_id)
  end
end
"""
# Schedules the delivery of a job's end to its callback_url, in the script that ends it: a
# job can never end without its delivery being due (and due exactly once).
_SCHEDULE_CALLBACK = (
    """
local function schedule_callback(key, job_id)
  if redis.call('HEXISTS', key, 'callback_url') == 0 then return end
  local now = redis.call('TIME')
  redis.call('ZADD', '"""
    + CALLBACKS_DUE
    + """', now[1] + now[2] / 1000000, job_id)
  redis.call('HSET', key, 'callback', '{"state": "pending", "attempts": 0}')
end
"""
)
# The scripts that workers and cancels run may run even when Redis is full (Redis 7+): they
# mostly free memory (the task's copy goes), and an accepted job must always be able to end.
ALLOW_OOM = "#!lua flags=allow-oom\n"
_UPDATE_EXISTING = (
    ALLOW_OOM
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""
)
# KEYS: record, its events. ARGV: job id, then field/value pairs. Stores the progress, adds it
# to the job's events (capped, expiring with the record) and announces the job id.
_PROGRESS = (
    ALLOW_OOM
    + f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('XADD', KEYS[2], 'MAXLEN', '~', {EVENTS_KEPT}, '*', unpack(ARGV, 2))
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
redis.call('PUBLISH', '{PROGRESS_CHANNEL}', ARGV[1])
return 1
"""
)
# Lua cannot see FINAL_STATUSES: the literal list below must match it (a test checks).
# KEYS: record, queued index, running index. ARGV: job id, now (epoch), max attempts,
# the error stored when giving up, now (ISO), then field/value pairs for a start.
_START = (
    ALLOW_OOM
    + _ANNOUNCE
    + _SCHEDULE_CALLBACK
    + RELEASE_IN_FLIGHT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'skipped' end
local status = redis.call('HGET', KEYS[1], 'status')
for _, final in ipairs({'succeeded', 'failed', 'canceled'}) do
  if status == final then return 'skipped' end
end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
if attempts > tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[4], 'finished_at', ARGV[5])
  redis.call('HDEL', KEYS[1], 'task')
  redis.call('ZREM', KEYS[3], ARGV[1])
  release_in_flight(redis.call('HGET', KEYS[1], 'owner'), ARGV[1])
  schedule_callback(KEYS[1], ARGV[1])
  announce(KEYS[1], ARGV[1])
  return 'gave_up'
end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 'started'
"""
)
# KEYS: record, queued index, running index, events. ARGV: job id, ttl, field/value pairs.
# A job that is already final keeps its first outcome.
_FINISH = (
    ALLOW_OOM
    + _ANNOUNCE
    + _SCHEDULE_CALLBACK
    + RELEASE_IN_FLIGHT
    + SET_STORED
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
for _, final in ipairs({'succeeded', 'failed', 'canceled'}) do
  if status == final then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HDEL', KEYS[1], 'task')
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local owner = redis.call('HGET', KEYS[1], 'owner')
release_in_flight(owner, ARGV[1])
local stored = redis.call('HGET', KEYS[1], 'stored_bytes')
if stored then set_stored(owner, ARGV[1], tonumber(stored)) end
redis.call('EXPIRE', KEYS[4], ARGV[2])
schedule_callback(KEYS[1], ARGV[1])
announce(KEYS[1], ARGV[1])
return 1
"""
)


# KEYS: record, queued index, running index, events. ARGV: job id. Removes the record and
# what counts it anywhere (indexes, its owner's jobs in flight, stored bytes and kept jobs, a
# callback due), then announces the id so that whoever waits on it finds it gone.
_DELETE = (
    ALLOW_OOM
    + RELEASE_IN_FLIGHT
    + SET_STORED
    + f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local owner = redis.call('HGET', KEYS[1], 'owner')
release_in_flight(owner, ARGV[1])
set_stored(owner, ARGV[1], 0)
if owner and owner ~= '' then redis.call('ZREM', '{OWNER_PREFIX}' .. owner .. ':jobs', ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', '{ALL_JOBS_INDEX}', ARGV[1])
redis.call('ZREM', '{CALLBACKS_DUE}', ARGV[1])
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('PUBLISH', '{DONE_CHANNEL}', ARGV[1])
return 1
"""
)


def parse_announcement(data: bytes) -> tuple[str, dict[str, str] | None]:
    """The job id and, if it came along, the record of a DONE_CHANNEL message."""
    if data[:1] == b"[":
        flat = json.loads(data)
        fields = dict(zip(flat[0::2], flat[1::2], strict=True))
        return fields["job_id"], fields
    return data.decode(), None


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class JobStore:
    """Reads and writes job records; shared by the API (create, read) and workers (update)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, max_attempts: int = 3) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._max_attempts = max_attempts
        # Updates are scripts so that they touch only a record that exists: a plain HSET
        # on an expired job would leave a half record behind, with no expiry.
        self._update = client.register_script(_UPDATE_EXISTING)
        self._progress = client.register_script(_PROGRESS)
        # The scripts that run in pipelines go as EVAL, not as redis-py's registered scripts:
        # those make every pipeline ask SCRIPT EXISTS first, a round trip more per job end.
        # Redis caches the compiled script by its hash, so resending the text costs ~1 KB.

    @property
    def redis(self) -> redis.Redis:
        return self._redis

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    @staticmethod
    def key(job_id: str) -> str:
        return KEY_PREFIX + job_id

    @staticmethod
    def events_key(job_id: str) -> str:
        return EVENTS_PREFIX + job_id

    def create(
        self,
        kind: JobKind,
        job_id: str,
        owner: str | None = None,
        task: dict[str, Any] | None = None,
    ) -> Job:
        """Record a new queued job (before its task is sent), with the task to re-send."""
        return self.create_many(kind, {job_id: task}, {job_id: owner})[job_id]

    def create_many(
        self,
        kind: JobKind,
        jobs: Mapping[str, dict[str, Any] | None],
        owners: Mapping[str, str | None],
        rows: Mapping[str, int] | None = None,
        stored: Mapping[str, int] | None = None,
        callbacks: Mapping[str, str] | None = None,
    ) -> dict[str, Job]:
        """Record queued jobs (id → task to re-send), all in one round trip."""
        with self._redis.pipeline(transaction=False) as pipe:
            created = self.queue_create_many(pipe, kind, jobs, owners, rows, stored, callbacks)
            pipe.execute()
        return created

    def queue_create_many(
        self,
        pipe: Pipeline | AsyncPipeline,
        kind: JobKind,
        jobs: Mapping[str, dict[str, Any] | None],
        owners: Mapping[str, str | None],
        rows: Mapping[str, int] | None = None,
        stored: Mapping[str, int] | None = None,
        callbacks: Mapping[str, str] | None = None,
    ) -> dict[str, Job]:
        """Add the writes of `create_many` to a pipeline (sync or asyncio) left to execute.

        `rows` counts each prediction's rows against its owner's rows in flight, `stored`
        the bytes of an upload against its owner's stored bytes; `callbacks` are the URLs
        to tell of each job's end."""
        now, created = _now(), {}
        started = time.time()
        for position, (job_id, task) in enumerate(jobs.items()):
            # A microsecond apart: the listing's order is the order the jobs were given in.
            epoch = started + position * 1e-6
            fields: Fields = {
                "job_id": job_id,
                "kind": kind.value,
                "status": JobStatus.QUEUED.value,
                "progress": "0",
                "created_at": now,
                "attempts": "0",
            }
            owner = owners[job_id]
            if owner:
                fields["owner"] = owner
            if callbacks and job_id in callbacks:
                fields["callback_url"] = callbacks[job_id]
            key = self.key(job_id)
            pipe.hset(key, mapping={**fields, "task": json.dumps(task)} if task else fields)
            pipe.expire(key, self._ttl)
            pipe.zadd(QUEUED_INDEX, {job_id: epoch})
            pipe.zadd(ALL_JOBS_INDEX, {job_id: epoch})
            queue_admit(
                pipe,
                owner,
                job_id,
                rows.get(job_id, 0) if rows else 0,
                stored.get(job_id, 0) if stored else 0,
                epoch,
            )
            created[job_id] = Job.model_validate(fields)
        return created

    def get(self, job_id: str) -> Job | None:
        """The job, or None when no such job exists (or it has expired)."""
        return self.parse(self._redis.hgetall(self.key(job_id)))

    @staticmethod
    def parse(fields: dict[Any, Any]) -> Job | None:
        """A job from its record's fields (as HGETALL returns them); None if there are none."""
        if not fields:
            return None
        record: dict[str, Any] = {as_text(k): as_text(v) for k, v in fields.items()}
        record.pop("task", None)
        in_file = record.pop(RESULT_IN_FILE, None) is not None
        for name in ("result", "error", "callback"):
            if name in record:
                record[name] = json.loads(record[name])
        if isinstance(record.get("result"), dict):  # written before results carried it
            record["result"].setdefault("kind", record.get("kind"))
        job = Job.model_validate(record)
        job._result_in_file = in_file
        return job

    def owner(self, job_id: str) -> str | None:
        """The key name that submitted the job (None: unknown job, or the service's own)."""
        owner = self._redis.hget(self.key(job_id), "owner")
        return None if owner is None else as_text(owner)

    def status(self, job_id: str) -> JobStatus | None:
        """Just the status (one small read, for checks between batch chunks)."""
        status = self._redis.hget(self.key(job_id), "status")
        return None if status is None else JobStatus(as_text(status))

    def task(self, job_id: str) -> dict[str, Any] | None:
        """The task recorded for a queued job, to send again if the queue lost it."""
        task = self._redis.hget(self.key(job_id), "task")
        return None if task is None else dict(json.loads(task))

    def start(self, job_id: str, stage: str | None = None) -> StartOutcome:
        """Mark the job running and count the attempt; give up after too many attempts."""
        return self.start_many([job_id], stage)[0]

    def start_many(self, job_ids: list[str], stage: str | None = None) -> list[StartOutcome]:
        """`start` for each job, in one round trip (a micro-batch of predictions)."""
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                self._queue_start(pipe, job_id, stage)
            return [StartOutcome(as_text(outcome)) for outcome in pipe.execute()]

    def _queue_start(self, pipe: Pipeline, job_id: str, stage: str | None) -> None:
        now = _now()
        fields: list[str] = ["status", JobStatus.RUNNING.value, "started_at", now]
        if stage:
            fields += ["stage", stage]
        gave_up = json.dumps(
            {
                "type": "too_many_attempts",
                "message": f"the job was delivered {self._max_attempts} times and its worker "
                "stopped each time (killed, out of memory, or past its time limit); "
                "it will not be tried again",
                "details": None,
            }
        )
        keys = [self.key(job_id), QUEUED_INDEX, RUNNING_INDEX]
        pipe.eval(
            _START, len(keys), *keys, job_id, time.time(), self._max_attempts, gave_up, now, *fields
        )

    def progress(self, job_id: str, progress: float, stage: str | None = None) -> None:
        """Report how far a running job has come (0..1) and, optionally, its stage."""
        fields: list[str] = ["progress", repr(min(max(progress, 0.0), 1.0))]
        if stage:
            fields += ["stage", stage]
        self._progress(keys=[self.key(job_id), self.events_key(job_id)], args=[job_id, *fields])

    def succeed(
        self,
        job_id: str,
        result: str | ResultFile,
        stored_bytes: int | None = None,
    ) -> bool:
        """Store the result (its JSON) and mark the job succeeded; False if it had ended.

        `stored_bytes`: what the job's files take now (a batch's upload and outputs)."""
        return self._finish(job_id, JobStatus.SUCCEEDED, **_success(result, stored_bytes))

    def succeed_many(self, results: Mapping[str, str | ResultFile]) -> list[bool]:
        """`succeed` for each job (a micro-batch's), in one round trip."""
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id, result in results.items():
                self._queue_finish(pipe, job_id, JobStatus.SUCCEEDED, **_success(result))
            return [bool(done) for done in pipe.execute()]

    def fail(
        self,
        job_id: str,
        error_type: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Mark the job failed with a reason a person can read; False if it had ended."""
        error = json.dumps({"type": error_type, "message": message, "details": details})
        return self._finish(job_id, JobStatus.FAILED, error=error)

    def cancel(self, job_id: str, by: str) -> bool:
        """Mark the job canceled; False if it had already ended. Workers notice and stop."""
        error = json.dumps({"type": "canceled", "message": f"canceled by {by}", "details": None})
        return self._finish(job_id, JobStatus.CANCELED, error=error)

    def delete(self, job_id: str) -> bool:
        """Remove the job's record and release what it held; False if there was none.

        A worker running it finds it gone at its next check and stops (irisq's workers treat
        a vanished record as canceled); its files are the caller's to delete."""
        keys = [self.key(job_id), QUEUED_INDEX, RUNNING_INDEX, self.events_key(job_id)]
        return bool(self._redis.eval(_DELETE, len(keys), *keys, job_id))

    def set_callback(self, job_id: str, state: CallbackState) -> bool:
        """Record how the delivery to the job's callback_url stands; False if it is gone."""
        fields = ["callback", state.model_dump_json()]
        return bool(self._update(keys=[self.key(job_id)], args=fields))

    def _finish(self, job_id: str, status: JobStatus, **extra: str) -> bool:
        with self._redis.pipeline(transaction=False) as pipe:
            self._queue_finish(pipe, job_id, status, **extra)
            return bool(pipe.execute()[0])

    def _queue_finish(self, pipe: Pipeline, job_id: str, status: JobStatus, **extra: str) -> None:
        fields = ["status", status.value, "finished_at", _now()]
        for name, value in extra.items():
            fields += [name, value]
        keys = [self.key(job_id), QUEUED_INDEX, RUNNING_INDEX, self.events_key(job_id)]
        pipe.eval(_FINISH, len(keys), *keys, job_id, self._ttl, *fields)

    def queued_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Ids of jobs queued before `cutoff` (epoch seconds) and not started since."""
        ids = self._redis.zrangebyscore(QUEUED_INDEX, "-inf", cutoff, start=0, num=limit)
        return [as_text(job_id) for job_id in ids if isinstance(job_id, bytes | str)]

    def running_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Ids of jobs whose current attempt started before `cutoff` and has not ended."""
        ids = self._redis.zrangebyscore(RUNNING_INDEX, "-inf", cutoff, start=0, num=limit)
        return [as_text(job_id) for job_id in ids if isinstance(job_id, bytes | str)]

    def touch_index_entry(self, job_id: str, status: JobStatus, now: float) -> None:
        """Look at this job again only after another full threshold."""
        index = QUEUED_INDEX if status is JobStatus.QUEUED else RUNNING_INDEX
        self._redis.zadd(index, {job_id: now}, xx=True)

    def forget_index_entry(self, job_id: str) -> None:
        """Drop a job whose record expired from the queued and running indexes."""
        with self._redis.pipeline() as pipe:
            pipe.zrem(QUEUED_INDEX, job_id)
            pipe.zrem(RUNNING_INDEX, job_id)
            pipe.execute()
