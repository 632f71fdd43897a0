"""Job records: our own account of every accepted job, kept in Redis.

Celery reports any id it does not know as PENDING, so it cannot tell "queued" from "never
existed". The record is written before the task is sent and updated by the worker; each
record is one Redis hash so that progress updates are single atomic writes, never a
read-modify-write of the whole record. Every change of status is a Lua script (irisq.lua),
so that two deliveries of one task (Redis re-delivers a task whose worker vanished) store
one result.

Beside each record (irisq.store_keys): the task to send again if the queue lost it (the
reconciler's job), an index of queued and running jobs, and the owner's usage (irisq.quotas).
An expired job is told from an unknown one by its id (irisq.ids), so nothing is kept per job
after its record. The record's encoding is irisq.job_records.

Past the ~250 lines we aim for because JobStore is the one place a job's state changes
(create, start, progress, finish, cancel, delete): split, a change of status would have
more than one home.
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
from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline
from redis.typing import EncodableT

from irisq import lua
from irisq.job_records import (
    RESULT_IN_FILE,
    STORED_BYTES,
    Fields,
    ResultFile,
    as_text,
    error_field,
    parse_announcement,
    parse_record,
    queued_fields,
    success_fields,
)
from irisq.job_types import CallbackState, Job, JobKind, JobStatus
from irisq.later import Command, RepliesLater
from irisq.lua import ALLOW_OOM
from irisq.store_keys import (
    ALL_JOBS_INDEX,
    ANNOUNCED_RECORD_MAX_BYTES,
    CALLBACKS_DUE,
    DONE_CHANNEL,
    EVENTS_KEPT,
    EVENTS_PREFIX,
    KEY_PREFIX,
    PROGRESS_CHANNEL,
    QUEUED_INDEX,
    RUNNING_INDEX,
)

# What the services import from here, defined in the modules above.
__all__ = [
    "ALLOW_OOM",
    "ALL_JOBS_INDEX",
    "ANNOUNCED_RECORD_MAX_BYTES",
    "CALLBACKS_DUE",
    "DONE_CHANNEL",
    "EVENTS_KEPT",
    "EVENTS_PREFIX",
    "KEY_PREFIX",
    "PROGRESS_CHANNEL",
    "QUEUED_INDEX",
    "RESULT_IN_FILE",
    "RUNNING_INDEX",
    "STORED_BYTES",
    "Fields",
    "JobStore",
    "Push",
    "ResultFile",
    "ScriptCall",
    "StartOutcome",
    "as_text",
    "parse_announcement",
]


@dataclass(frozen=True)
class Push:
    """A task to push to `queue` with the jobs it runs, unless the queue holds `max_depth`
    tasks already (then nothing is written)."""

    queue: str
    message: str
    max_depth: int


@dataclass(frozen=True)
class ScriptCall:
    """A script with its keys and arguments, for whichever client (sync or asyncio) runs it."""

    script: str
    keys: list[EncodableT]
    args: list[EncodableT]

    def run(self, client: redis.Redis | AsyncRedis) -> Any:
        """The script's answer (to await, from an asyncio client)."""
        return client.eval(self.script, len(self.keys), *self.keys, *self.args)


class StartOutcome(StrEnum):
    """What happened when a worker tried to start a job."""

    STARTED = "started"
    SKIPPED = "skipped"  # unknown, expired, already finished or canceled
    GAVE_UP = "gave_up"  # delivered too many times: now failed


def _now() -> str:
    return datetime.now(UTC).isoformat()


class JobStore:
    """Reads and writes job records; shared by the API (create, read) and workers (update)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, max_attempts: int = 3) -> None:
        self._redis = client
        self._ttl = ttl_seconds
        self._max_attempts = max_attempts
        # Updates are scripts so that they touch only a record that exists: a plain HSET
        # on an expired job would leave a half record behind, with no expiry.
        self._update = client.register_script(lua.UPDATE_EXISTING)
        self._progress = client.register_script(lua.PROGRESS)
        # The scripts that run in pipelines go as EVAL, not as redis-py's registered scripts:
        # those make every pipeline ask SCRIPT EXISTS first, a round trip more per job end.
        # Redis caches the compiled script by its hash, so resending the text costs ~2 KB.

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
        create, created = self.create_command(kind, jobs, owners, rows, stored, callbacks)
        create.run(self._redis)
        return created

    def create_command(
        self,
        kind: JobKind,
        jobs: Mapping[str, dict[str, Any] | str | None],
        owners: Mapping[str, str | None],
        rows: Mapping[str, int] | None = None,
        stored: Mapping[str, int] | None = None,
        callbacks: Mapping[str, str] | None = None,
        push: Push | None = None,
    ) -> tuple[ScriptCall, dict[str, Job]]:
        """The script (lua.CREATE) that records `jobs` and, given `push`, pushes its task,
        for a sync or an asyncio client to run; and the jobs it records.

        `rows` counts each prediction's rows against its owner's rows in flight, `stored`
        the bytes of an upload against its owner's stored bytes; `callbacks` are the URLs
        to tell of each job's end. The script answers -1, or the queue's depth if `push`
        found it full: then it wrote nothing."""
        now, created = _now(), {}
        started = time.time()
        keys: list[EncodableT] = [push.queue] if push else []
        args: list[EncodableT] = (
            [push.max_depth, self._ttl, push.message] if push else [0, self._ttl, ""]
        )
        for position, (job_id, task) in enumerate(jobs.items()):
            # A microsecond apart: the listing's order is the order the jobs were given in.
            epoch = started + position * 1e-6
            owner = owners[job_id]
            callback_url = callbacks.get(job_id) if callbacks else None
            fields = queued_fields(job_id, kind, now, owner, callback_url)
            created[job_id] = Job.model_validate(fields)
            if task:  # its JSON, or already JSON text (a prediction's rows, encoded once)
                fields["task"] = task if isinstance(task, str) else json.dumps(task)
            args += [
                job_id,
                repr(epoch),
                rows.get(job_id, 0) if rows else 0,
                stored.get(job_id, 0) if stored else 0,
                owner or "",
                len(fields),
            ]
            for name, value in fields.items():
                args += [name, value]
        return ScriptCall(lua.CREATE, keys, args), created

    def get(self, job_id: str) -> Job | None:
        """The job, or None when no such job exists (or it has expired)."""
        return self.parse(self._redis.hgetall(self.key(job_id)))

    @staticmethod
    def parse(fields: dict[Any, Any]) -> Job | None:
        """A job from its record's fields (as HGETALL returns them); None if there are none."""
        return parse_record(fields)

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
        with self.send_starts(job_ids, stage) as sent:
            return sent.replies()

    def send_starts(
        self, job_ids: list[str], stage: str | None = None
    ) -> RepliesLater[StartOutcome]:
        """`start` for each job, sent now; their outcomes are read when the caller asks for
        them (irisq.later): a worker scores the jobs meanwhile."""
        commands = [self._start_command(job_id, stage) for job_id in job_ids]
        return RepliesLater(self._redis, commands, lambda reply: StartOutcome(as_text(reply)))

    def _start_command(self, job_id: str, stage: str | None) -> Command:
        now = _now()
        fields: list[str] = ["status", JobStatus.RUNNING.value, "started_at", now]
        if stage:
            fields += ["stage", stage]
        gave_up = error_field(
            "too_many_attempts",
            f"the job was delivered {self._max_attempts} times and its worker stopped each "
            "time (killed, out of memory, or past its time limit); it will not be tried again",
        )
        keys = [self.key(job_id), QUEUED_INDEX, RUNNING_INDEX]
        args: list[EncodableT] = [job_id, time.time(), self._max_attempts, gave_up, now, *fields]
        return ("EVAL", lua.START, len(keys), *keys, *args)

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
        return self._finish(job_id, JobStatus.SUCCEEDED, **success_fields(result, stored_bytes))

    def succeed_many(self, results: Mapping[str, str | ResultFile]) -> list[bool]:
        """`succeed` for each job (a micro-batch's), in one round trip."""
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id, result in results.items():
                self._queue_finish(pipe, job_id, JobStatus.SUCCEEDED, **success_fields(result))
            return [bool(done) for done in pipe.execute()]

    def fail(
        self,
        job_id: str,
        error_type: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Mark the job failed with a reason a person can read; False if it had ended."""
        error = error_field(error_type, message, details)
        return self._finish(job_id, JobStatus.FAILED, error=error)

    def cancel(self, job_id: str, by: str) -> bool:
        """Mark the job canceled; False if it had already ended. Workers notice and stop."""
        error = error_field("canceled", f"canceled by {by}")
        return self._finish(job_id, JobStatus.CANCELED, error=error)

    def delete(self, job_id: str) -> bool:
        """Remove the job's record and release what it held; False if there was none.

        A worker running it finds it gone at its next check and stops (irisq's workers treat
        a vanished record as canceled); its files are the caller's to delete."""
        keys = [self.key(job_id), QUEUED_INDEX, RUNNING_INDEX, self.events_key(job_id)]
        return bool(self._redis.eval(lua.DELETE, len(keys), *keys, job_id))

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
        pipe.eval(lua.FINISH, len(keys), *keys, job_id, self._ttl, *fields)

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
