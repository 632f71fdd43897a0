"""Waiting for a job without polling: one Redis subscription per API process.

It also wakes the event streams of jobs that report progress (api.event_stream).

Workers announce every job that ends on a pub/sub channel, inside the same Lua script that
stores its outcome (irisq.jobs), so an announcement never precedes the result; it carries
the record itself unless that is large, so a waiting request usually reads nothing more.
A request that asked to wait registers a future for its job id before the job is even
queued, and the listener resolves it. If the subscription drops (Redis restarting), waits
time out and clients get the usual 202 to poll: the wait is an optimisation, never the only
path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable

import redis.asyncio as aioredis

from irisq.job_types import Job
from irisq.jobs import DONE_CHANNEL, PROGRESS_CHANNEL, JobStore, as_text, parse_announcement

logger = logging.getLogger("irisq.api")

Announced = asyncio.Future[dict[str, str] | None]

MAX_WAIT_SECONDS = 60.0
_PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE)


def preferred_wait(prefer: str | None) -> float | None:
    """`Prefer: wait=5` (RFC 7240) → 5.0; None when the header asks no wait."""
    if not prefer:
        return None
    found = _PREFER_WAIT.search(prefer)
    return min(float(found.group(1)), MAX_WAIT_SECONDS) if found else None


class JobWaiter:
    def __init__(self, redis_url: str) -> None:
        # Its own client: a subscription idles for as long as no job ends, which the API's
        # shared client would take for a dead socket (its reads time out after 5 s).
        self._client = aioredis.Redis.from_url(redis_url, socket_connect_timeout=2)
        # Each future gets the record that came with the announcement, or None.
        self._waiting: dict[str, list[Announced]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._on_end: list[Callable[[str], None]] = []
        # Event streams (api.event_stream): set on each progress or end of their job.
        self._watching: dict[str, set[asyncio.Event]] = {}

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="irisq-job-waiter")

    async def close(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()

    @property
    def listening(self) -> bool:
        return self._subscribed.is_set()

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Call `callback(job_id)` for every job whose end is announced (the batcher's slots)."""
        self._on_end.append(callback)

    def expect(self, job_id: str) -> Announced:
        """Register interest before the job is queued, so its end cannot be missed."""
        future: Announced = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(job_id, []).append(future)
        return future

    def watch(self, job_id: str) -> asyncio.Event:
        """An event set whenever the job reports progress or ends (clear it, then read)."""
        changed = asyncio.Event()
        self._watching.setdefault(job_id, set()).add(changed)
        return changed

    def unwatch(self, job_id: str, changed: asyncio.Event) -> None:
        watchers = self._watching.get(job_id, set())
        watchers.discard(changed)
        if not watchers:
            self._watching.pop(job_id, None)

    async def wait(self, job_id: str, future: Announced, seconds: float) -> Job | None:
        """The finished job if it ended within `seconds`, else None."""
        try:
            if not self._subscribed.is_set():
                return None  # not listening (Redis away): do not hold the request for nothing
            fields = await asyncio.wait_for(future, timeout=seconds)
        except TimeoutError:
            return None
        finally:
            self.forget(job_id, future)
        if fields is None:  # a large record is announced by its id alone
            return JobStore.parse(await self._client.hgetall(JobStore.key(job_id)))
        return JobStore.parse(fields)

    def forget(self, job_id: str, future: Announced) -> None:
        futures = self._waiting.get(job_id, [])
        if future in futures:
            futures.remove(future)
        if not futures:
            self._waiting.pop(job_id, None)

    async def _listen(self) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(DONE_CHANNEL, PROGRESS_CHANNEL)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message["type"] != "message":
                            continue
                        if as_text(message["channel"]) == PROGRESS_CHANNEL:
                            self._wake(as_text(message["data"]))
                        else:
                            self._resolve(*parse_announcement(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: waits time out meanwhile; retry
                self._subscribed.clear()
                logger.warning("job announcements unavailable (%s); retrying", exc)
                await asyncio.sleep(1)

    def _wake(self, job_id: str) -> None:
        for changed in self._watching.get(job_id, ()):
            changed.set()

    def _resolve(self, job_id: str, fields: dict[str, str] | None) -> None:
        self._wake(job_id)
        for callback in self._on_end:
            callback(job_id)
        for future in self._waiting.get(job_id, []):
            if not future.done():
                future.set_result(fields)
