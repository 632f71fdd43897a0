"""Rate limits: GCRA per API key, shared in Redis; and in-process limits per client address.

GCRA (the generic cell rate algorithm) is a sliding window in one number per key, the
"theoretical arrival time": a key may make `rate` requests a second with bursts of up to
`rate` at once, and never twice its rate across a window boundary as a fixed window allows.
The Redis script also reads the key's usage (jobs and rows in flight, bytes stored) and
the depth of the queue the request would feed when the request is a submission, so the
quota and queue checks cost no second round trip, and come before the body is read.

While Redis refuses writes (full: `noeviction` past maxmemory) the limit falls back to this
process's own GCRA, so reads, cancels and deletes keep working and are still limited.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError

from irisq.quotas import OwnerKeys

RATE_PREFIX = "irisq:rate:"
# KEYS: the rate key, the owner's in-flight set and usage hash, the queue a submission feeds.
# ARGV: now (µs), emission interval (µs), burst tolerance (µs), "1" to return the usage and
# the queue's depth too.
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - tonumber(ARGV[3]) - now
if wait > 0 then return {0, string.format('%d', wait)} end
local ttl = math.ceil((tat + interval - now) / 1000) + 1
redis.call('SET', KEYS[1], string.format('%d', tat + interval), 'PX', ttl)
if ARGV[4] ~= '1' then return {1, '0'} end
local usage = redis.call('HMGET', KEYS[3], 'rows', 'bytes')
local depth = redis.call('LLEN', KEYS[4])
return {1, '0', redis.call('ZCARD', KEYS[2]), usage[1] or '0', usage[2] or '0', depth}
"""


@dataclass(frozen=True)
class Usage:
    """What a key holds right now: jobs and rows queued or running, bytes of files stored."""

    jobs: int = 0
    rows: int = 0
    bytes: int = 0
    queue_depth: int = 0  # tasks waiting in the queue the submission would feed (not per key)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds, for the Retry-After header
    usage: Usage | None = None


class Gcra:
    """The same algorithm in this process, for many buckets, holding at most `max_buckets`
    (the least recently seen are forgotten first: memory stays bounded whoever calls)."""

    def __init__(self, per_second: float, burst: int, max_buckets: int = 10_000) -> None:
        self.interval = 1.0 / per_second
        self.tolerance = self.interval * max(burst - 1, 0)
        self.max_buckets = max_buckets
        self._tat: OrderedDict[str, float] = OrderedDict()

    def check(self, bucket: str, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        tat = max(self._tat.pop(bucket, now), now)
        wait = tat - self.tolerance - now
        if wait > 0:
            self._tat[bucket] = tat
            return Verdict(False, math.ceil(wait))
        self._tat[bucket] = tat + self.interval
        while len(self._tat) > self.max_buckets:
            self._tat.popitem(last=False)
        return Verdict(True)


class KeyRateLimiter:
    """`per_second` requests per bucket (an API key, or an address when the API is open)."""

    def __init__(self, client: aioredis.Redis, per_second: int) -> None:
        self.per_second = per_second
        self._client = client
        self._script = client.register_script(_GCRA)
        self._local = Gcra(per_second, per_second) if per_second else None

    async def check(self, bucket: str, owner: str, queue: str | None) -> Verdict:
        """The verdict on one request; for a submission (`queue`: the queue it would feed),
        with the key's usage and the queue's depth."""
        if not self.per_second:  # no limit: only the usage may be wanted
            return Verdict(True, 0, await self.usage(owner, queue) if queue else None)
        interval = 1_000_000 / self.per_second
        keys = OwnerKeys(owner)
        try:
            answer = await self._script(
                keys=[RATE_PREFIX + bucket, keys.inflight, keys.usage, *([queue] if queue else [])],
                args=[
                    time.time_ns() // 1000,
                    round(interval),
                    round(interval * (self.per_second - 1)),
                    "1" if queue else "0",
                ],
            )
        except OutOfMemoryError:
            if self._local is None:
                raise
            # Redis is full: limit in this process; its usage can still be read (a read is
            # never refused), so the quotas and the queue's depth still hold.
            local = self._local.check(bucket)
            if not local.allowed or not queue:
                return local
            return Verdict(True, 0, await self.usage(owner, queue))
        allowed, wait = int(answer[0]), int(answer[1])
        if not allowed:
            return Verdict(False, max(1, math.ceil(wait / 1_000_000)))
        usage = Usage(*(int(value) for value in answer[2:6])) if queue else None
        return Verdict(True, 0, usage)

    async def usage(self, owner: str, queue: str | None = None) -> Usage:
        """The key's usage; with `queue`, that queue's depth too."""
        keys = OwnerKeys(owner)
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.inflight)
            pipe.hmget(keys.usage, "rows", "bytes")
            if queue:
                pipe.llen(queue)
            jobs, (rows, stored), *depth = await pipe.execute()
        return Usage(int(jobs), int(rows or 0), int(stored or 0), int(depth[0]) if depth else 0)
