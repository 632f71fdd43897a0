"""Admission: new work is refused while Redis is nearly full, before it is full.

Redis runs with `noeviction`: at maxmemory it refuses every write, and then workers could not
record the end of jobs already accepted, nor anyone cancel one. So submissions stop at a
share of maxmemory (IRISQ_REDIS_ADMISSION_FRACTION) and the rest is headroom for reads,
cancels, deletes and for the workers; the reconciler meanwhile removes the oldest finished
jobs, so admission reopens by itself. Memory is read at most twice a second per process, and
between two reads each accepted submission counts as its body's size (`note`): a burst of
large submissions cannot slip past the mark before the next read.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger("irisq.api")

READ_EVERY_SECONDS = 0.5

# What Redis's memory settings mean for irisq, in words anyone may read (GET /readyz shows
# them; the log names the policy).
NO_MAXMEMORY = (
    "Redis has no maxmemory: with no limit it grows until the host runs out of memory, and "
    "irisq cannot keep headroom for accepted jobs (set maxmemory and noeviction)"
)
EVICTS = (
    "Redis evicts keys when it is full (its maxmemory-policy is not noeviction): job "
    "records, results and queued tasks could vanish without a word. Set maxmemory-policy "
    "noeviction"
)
CLOSED = (
    "new jobs are refused: Redis is past {share:.0%} of its maxmemory. Jobs can still be "
    "read, canceled and deleted; the oldest finished jobs are removed to make room"
)


class Admission:
    retry_after_seconds = 30

    def __init__(self, client: aioredis.Redis, fraction: float) -> None:
        self._client = client
        self.fraction = fraction
        self._read_at = float("-inf")
        self._used = 0
        self._limit = 0  # Redis's maxmemory; 0: none set
        self._policy = ""  # its maxmemory-policy; "": not read yet
        self._lock = asyncio.Lock()

    async def refusal(self) -> str | None:
        """Why new work is refused right now, or None."""
        await self.refresh()
        if not self.closed:
            return None
        return (
            f"the job store is {self._used / self._limit:.0%} full; new jobs are refused above "
            f"{self.fraction:.0%} so that accepted ones can finish. Try again shortly"
        )

    @property
    def closed(self) -> bool:
        """Whether new work is refused, as of the last reading."""
        return bool(self._limit) and self._used >= self.fraction * self._limit

    def warnings(self) -> list[str]:
        """What an operator must know of Redis's memory, as of the last reading. None of it
        takes the API out of rotation: jobs can still be read, canceled and deleted."""
        if not self.limited:
            return [NO_MAXMEMORY]
        warnings = []
        if self._evicts:
            warnings.append(EVICTS)
        if self.closed:
            warnings.append(CLOSED.format(share=self.fraction))
        return warnings

    @property
    def _evicts(self) -> bool:
        """At maxmemory, such a Redis drops keys (job records, results, queued tasks)."""
        return self._policy not in ("", "noeviction")

    async def refresh(self) -> None:
        """Read Redis's memory figures if the last read is stale (one reader at a time)."""
        if time.monotonic() - self._read_at >= READ_EVERY_SECONDS and not self._lock.locked():
            async with self._lock:
                await self._read()

    def note(self, size: int) -> None:
        """A submission of about `size` bytes was let in: count it until the next read."""
        self._used += size

    async def _read(self) -> None:
        try:
            memory = await self._client.info("memory")
        except RedisError as exc:  # the submission itself will meet Redis and say so
            logger.debug("could not read Redis memory: %s", exc)
            return
        finally:
            self._read_at = time.monotonic()
        self._used = int(memory.get("used_memory", 0))
        self._limit = int(memory.get("maxmemory", 0))
        policy, before = str(memory.get("maxmemory_policy", "")), self._policy
        self._policy = policy
        if policy != before and self.limited and self._evicts:
            logger.warning("%s (maxmemory-policy %s)", EVICTS, policy)

    @property
    def limited(self) -> bool:
        """Whether Redis has a maxmemory at all (without one it grows until the host fails)."""
        return self._limit > 0
