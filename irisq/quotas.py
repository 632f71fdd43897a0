"""What each API key holds in shared state, so that no key can take more than its share.

Per key (its name is the owner of its jobs), in Redis:
- `inflight`: a sorted set of its queued and running jobs, scored by their rows. Its size is
  the jobs in flight; the `rows` field of `usage` sums the scores. A job leaves it when it
  ends (irisq.lua's finish script), once: ZREM answers whether it was still there.
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

from irisq import lua

# Re-exported: the key names are spelled in irisq.store_keys, which the Lua scripts share.
from irisq.store_keys import OWNER_PREFIX as OWNER_PREFIX
from irisq.store_keys import OWNERS as OWNERS


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


def set_stored_bytes(client: redis.Redis, owner: str | None, job_id: str, size: int) -> None:
    """Record that `job_id`'s files now take `size` bytes (0 once they are deleted)."""
    if owner:
        client.eval(lua.SET_STORED_BYTES, 0, owner, job_id, max(size, 0))


def owners(client: redis.Redis) -> list[str]:
    return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(OWNERS))
