"""What each API key holds in shared state, so that no key can take more than its share.

Per key (its name is the owner of its jobs), in Redis:
- `inflight`: a sorted set of its queued and running jobs, scored by their rows. Its size is
  the jobs in flight; the `rows` field of `usage` sums the scores. A job leaves it when it
  ends (irisq.jobs' finish script), once: ZREM answers whether it was still there.
- `files`: its jobs that keep files (uploads, results), scored by their bytes; `usage`'s
  `bytes` field sums them. Updated by whoever writes or deletes the files.
- `jobs`: all its jobs whose records are kept, by creation time: what the reconciler
  trims to `quota_stored_jobs` (oldest finished first) and, under memory pressure, further.
Every owner with such keys is in the `irisq:owners` set, for the reconciler to visit.

Jobs the service queues itself (the first champion's training) have no owner and no quota.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline

OWNERS = "irisq:owners"
OWNER_PREFIX = "irisq:owner:"

# Lua, shared by the job scripts: take `job_id` out of its owner's in-flight set (and its
# rows out of the sum), if it is still there. `owner` comes from the job's record.
RELEASE_IN_FLIGHT = f"""
local function release_in_flight(owner, job_id)
  if not owner or owner == '' then return end
  local inflight = '{OWNER_PREFIX}' .. owner .. ':inflight'
  local rows = redis.call('ZSCORE', inflight, job_id)
  if rows then
    redis.call('ZREM', inflight, job_id)
    redis.call('HINCRBY', '{OWNER_PREFIX}' .. owner .. ':usage', 'rows', -tonumber(rows))
  end
end
"""
# Lua: record that `job_id`'s files now take `bytes` (0: deleted) in its owner's usage.
SET_STORED = f"""
local function set_stored(owner, job_id, bytes)
  if not owner or owner == '' then return 0 end
  local files = '{OWNER_PREFIX}' .. owner .. ':files'
  local before = tonumber(redis.call('ZSCORE', files, job_id) or '0')
  if bytes > 0 then
    redis.call('ZADD', files, bytes, job_id)
  else
    redis.call('ZREM', files, job_id)
  end
  redis.call('HINCRBY', '{OWNER_PREFIX}' .. owner .. ':usage', 'bytes', bytes - before)
  return bytes - before
end
"""
# KEYS: none. ARGV: owner, job id, bytes.
_SET_STORED_CALL = SET_STORED + "return set_stored(ARGV[1], ARGV[2], tonumber(ARGV[3]))"


@dataclass(frozen=True)
class OwnerKeys:
    """The Redis keys of one owner's usage."""

    owner: str

    @property
    def inflight(self) -> str:
        return f"{OWNER_PREFIX}{self.owner}:inflight"

    @property
    def usage(self) -> str:
        return f"{OWNER_PREFIX}{self.owner}:usage"

    @property
    def files(self) -> str:
        return f"{OWNER_PREFIX}{self.owner}:files"

    @property
    def jobs(self) -> str:
        return f"{OWNER_PREFIX}{self.owner}:jobs"


def queue_admit(
    pipe: Pipeline | AsyncPipeline,
    owner: str | None,
    job_id: str,
    rows: int,
    stored_bytes: int,
    now: float,
) -> None:
    """Add a new job's writes to the creating pipeline: in flight, its files, and kept."""
    if not owner:
        return
    keys = OwnerKeys(owner)
    pipe.zadd(keys.inflight, {job_id: rows})
    pipe.hincrby(keys.usage, "rows", rows)
    if stored_bytes:
        pipe.zadd(keys.files, {job_id: stored_bytes})
        pipe.hincrby(keys.usage, "bytes", stored_bytes)
    pipe.zadd(keys.jobs, {job_id: now})
    pipe.sadd(OWNERS, owner)


def set_stored_bytes(client: redis.Redis, owner: str | None, job_id: str, size: int) -> None:
    """Record that `job_id`'s files now take `size` bytes (0 once they are deleted)."""
    if owner:
        client.eval(_SET_STORED_CALL, 0, owner, job_id, max(size, 0))


def owners(client: redis.Redis) -> list[str]:
    return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(OWNERS))
