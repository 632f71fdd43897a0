"""A job's life as Server-Sent Events: its progress, then its final status, then the end.

Progress lives in a capped Redis stream per job (irisq.jobs), whose entry ids are the event
ids: a client that reconnects with `Last-Event-ID` is sent every entry after it, so a dropped
connection misses nothing. The API process's one pub/sub subscription (api.waiting) only
wakes a stream when its job moves; the stream itself is always read from Redis, so a wake-up
lost while the subscription was down costs a second's delay (the stream then looks every
second), never an event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from api.waiting import JobWaiter
from irisq.job_types import FINAL_STATUSES, Job, JobStatus
from irisq.jobs import JobStore, as_text

EVENTS_MEDIA_TYPE = "text/event-stream"
RECONNECT_MILLISECONDS = 2000  # what EventSource waits before reconnecting
UNSUBSCRIBED_POLL_SECONDS = 1.0
_READ_AT_ONCE = 500  # stream entries per read
# An event id is a Redis stream entry id, two 64-bit numbers: 19 digits always fit.
EVENT_ID_PATTERN = r"^[0-9]{1,19}-[0-9]{1,19}$"
# One event of the stream, as read by a client (OpenAPI before 3.2 has the `schema` of an
# event stream describe each event: its fields, `data` being JSON text).
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["progress", "status", "deleted"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "`progress`: `{job_id, status, progress, stage}`; "
            "`status`: the whole job, as `GET /v1/jobs/{job_id}` answers it; `deleted` "
            "(the job was deleted while followed): `{job_id}`.",
        },
        "id": {"type": "string", "pattern": EVENT_ID_PATTERN},
        "retry": {"type": "integer", "minimum": 0},
    },
}

ReadJob = Callable[[str], Awaitable[Job | None]]


def event(name: str, data: dict[str, Any] | str, event_id: str | None = None) -> str:
    """One event as the SSE format writes it."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {text}\n\n"


class JobEvents:
    """The events of one job for one client."""

    def __init__(
        self,
        client: aioredis.Redis,
        waiter: JobWaiter,
        read_job: ReadJob,
        heartbeat_seconds: float,
        max_seconds: float,
    ) -> None:
        self.client = client
        self.waiter = waiter
        self.read_job = read_job  # the whole job, its result read from a file if need be
        self.heartbeat = heartbeat_seconds
        self.max_seconds = max_seconds

    async def stream(self, job_id: str, last_event_id: str | None) -> AsyncIterator[str]:
        changed = self.waiter.watch(job_id)  # before reading: no change can slip between
        try:
            async for text in self._events(job_id, last_event_id, changed):
                yield text
        finally:
            self.waiter.unwatch(job_id, changed)

    async def _events(
        self, job_id: str, last_event_id: str | None, changed: asyncio.Event
    ) -> AsyncIterator[str]:
        yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
        position = last_event_id or "0-0"
        said_anything = last_event_id is not None
        ends_at = time.monotonic() + self.max_seconds
        while True:
            changed.clear()
            entries: Any = await self.client.xrange(
                JobStore.events_key(job_id), f"({position}", "+", count=_READ_AT_ONCE
            )
            for entry_id, fields in entries:
                position = as_text(entry_id)
                yield event("progress", _progress(job_id, fields), position)
                said_anything = True
            if len(entries) == _READ_AT_ONCE:
                continue  # more waiting to be read
            status = await self.client.hget(JobStore.key(job_id), "status")
            if status is None:
                yield event("deleted", {"job_id": job_id})
                return
            if JobStatus(as_text(status)) in FINAL_STATUSES:
                job = await self.read_job(job_id)
                if job is None:
                    yield event("deleted", {"job_id": job_id})
                else:
                    yield event("status", job.model_dump_json())
                return
            if not said_anything:  # a queued job, or one that reported nothing yet
                yield event("progress", await self._snapshot(job_id))
                said_anything = True
            left = ends_at - time.monotonic()
            if left <= 0:
                return  # the client reconnects with its Last-Event-ID
            if not await self._changed_within(changed, left):
                yield ": keep-alive\n\n"

    async def _changed_within(self, changed: asyncio.Event, left: float) -> bool:
        """Whether the job changed within a heartbeat (never past the stream's end)."""
        seconds = self.heartbeat if self.waiter.listening else UNSUBSCRIBED_POLL_SECONDS
        seconds = min(seconds, left)
        try:
            await asyncio.wait_for(changed.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _snapshot(self, job_id: str) -> dict[str, Any]:
        status, progress, stage = await self.client.hmget(
            JobStore.key(job_id), ["status", "progress", "stage"]
        )
        return {
            "job_id": job_id,
            "status": as_text(status) if status is not None else None,
            "progress": float(progress) if progress is not None else 0.0,
            "stage": as_text(stage) if stage is not None else None,
        }


def _progress(job_id: str, fields: dict[Any, Any]) -> dict[str, Any]:
    values = {as_text(k): as_text(v) for k, v in fields.items()}
    return {
        "job_id": job_id,
        "status": JobStatus.RUNNING.value,
        "progress": float(values.get("progress", 0)),
        "stage": values.get("stage"),
    }
