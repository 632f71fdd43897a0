"""Keeping what each key stores within bounds, in every reconciler round.

Per key (irisq.quotas):
- entries of its job index whose records have expired are dropped, with their files;
- beyond IRISQ_QUOTA_STORED_JOBS, its oldest finished jobs are removed (their ids then
  answer 410 Gone), so no key can fill Redis with finished jobs kept for a week;
- its in-flight set keeps only jobs whose records exist (a record that expired unfinished
  would otherwise hold a quota slot forever).
And while Redis is past the admission mark, the oldest finished jobs of the key holding the
most are removed, until it is back under: admission (api.admission) then reopens by itself.
Queued and running jobs are never removed.
"""

from __future__ import annotations

import logging

import redis

from irisq import lua
from irisq.batch_storage import open_storage
from irisq.ids import is_job_id
from irisq.jobs import ALL_JOBS_INDEX, JobStore, as_text
from irisq.quotas import OwnerKeys, owners, set_stored_bytes
from irisq.settings import Settings

logger = logging.getLogger(__name__)

CHUNK = 500  # entries looked at per step: each step is one short script in Redis
MAX_STEPS = 20  # per key and per round, so one round never holds Redis for long
PRESSURE_RELIEF = 0.05  # evict until this far under the admission mark


class Retention:
    def __init__(self, settings: Settings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.client: redis.Redis = store.redis
        self.storage = open_storage(settings)
        # Each step is one of these (irisq/lua/<name>.lua says what it takes and does).
        self._remove_ended = self.client.register_script(lua.REMOVE_ENDED)
        self._drop_expired_script = self.client.register_script(lua.DROP_EXPIRED)
        self._repair = self.client.register_script(lua.REPAIR_IN_FLIGHT)

    def run(self) -> int:
        """One round over every key; how many jobs left the indexes."""
        removed = self._drop_expired(ALL_JOBS_INDEX)
        for owner in owners(self.client):
            removed += self._drop_expired_entries(owner)
            removed += self._enforce_cap(owner)
            self._repair_in_flight(owner)
        removed += self._relieve_pressure()
        return removed

    def _drop_expired_entries(self, owner: str) -> int:
        return self._drop_expired(OwnerKeys(owner).jobs, owner)

    def _drop_expired(self, index: str, owner: str | None = None) -> int:
        """Drop the oldest entries of a job index whose records have expired (and, for an
        owner's index, the jobs' files)."""
        dropped, start = 0, 0
        for _ in range(MAX_STEPS):
            oldest = _ids(self.client.zrange(index, start, start + CHUNK - 1))
            if not oldest:
                break
            gone = _ids(self._drop_expired_script(keys=[index], args=oldest))
            if owner is not None:
                self._delete_files(owner, gone)
            dropped += len(gone)
            start += len(oldest) - len(gone)  # what stayed is still ahead of the next chunk
            if len(gone) < len(oldest) // 2:  # mostly live from here on: enough this round
                break
        return dropped

    def _enforce_cap(self, owner: str) -> int:
        keys, removed = OwnerKeys(owner), 0
        for _ in range(MAX_STEPS):
            excess = int(self.client.zcard(keys.jobs)) - self.settings.quota_stored_jobs
            if excess <= 0:
                break
            step = self._remove_oldest(owner, min(excess, CHUNK))
            if not step:  # the rest is in flight
                break
            removed += step
        if removed:
            logger.info(
                "removed the %d oldest finished jobs of %s (quota of stored jobs)", removed, owner
            )
        return removed

    def _remove_oldest(self, owner: str, count: int) -> int:
        """Remove up to `count` of the key's oldest finished jobs, looking past the ones still
        in flight (which stay, however old)."""
        keys, start, removed = OwnerKeys(owner), 0, 0
        for _ in range(MAX_STEPS):
            oldest = _ids(self.client.zrange(keys.jobs, start, start + CHUNK - 1))
            if not oldest:
                break
            flying = self.client.zmscore(keys.inflight, oldest)
            ended = [i for i, score in zip(oldest, flying, strict=True) if score is None]
            gone = _ids(self._remove_ended(keys=[keys.jobs], args=ended[: count - removed]))
            self._delete_files(owner, gone)
            removed += len(gone)
            if removed >= count:
                break
            start += len(oldest) - len(gone)  # what stayed is still ahead of the next chunk
        return removed

    def _repair_in_flight(self, owner: str) -> None:
        keys = OwnerKeys(owner)
        members = _ids(self.client.zrange(keys.inflight, 0, -1))
        for start in range(0, len(members), CHUNK):
            released = int(self._repair(args=[owner, *members[start : start + CHUNK]]))
            if released:
                logger.warning(
                    "released %d in-flight jobs of %s whose records expired", released, owner
                )

    def _relieve_pressure(self) -> int:
        """Past the admission mark: remove the oldest finished jobs of the largest key."""
        removed = 0
        for _ in range(MAX_STEPS):
            memory = self.client.info("memory")
            limit = int(memory.get("maxmemory", 0))
            mark = (self.settings.redis_admission_fraction - PRESSURE_RELIEF) * limit
            if not limit or int(memory.get("used_memory", 0)) < mark:
                break
            sizes = {o: int(self.client.zcard(OwnerKeys(o).jobs)) for o in owners(self.client)}
            step = 0
            for owner in sorted(sizes, key=lambda o: -sizes[o]):  # the largest key first
                step = self._remove_oldest(owner, CHUNK) if sizes[owner] else 0
                if step:
                    break
            if not step:  # only jobs in flight are left anywhere: nothing to free this round
                break
            removed += step
        if removed:
            logger.warning("Redis is nearly full: removed the %d oldest finished jobs", removed)
        return removed

    def _delete_files(self, owner: str, job_ids: list[str]) -> None:
        """Delete the files of jobs that left the index, and take them off the key's bytes."""
        if not job_ids:
            return
        sizes = self.client.zmscore(OwnerKeys(owner).files, job_ids)
        for job_id, size in zip(job_ids, sizes, strict=True):
            if size is None:
                continue
            if is_job_id(job_id):  # read back from Redis: only a UUID names files
                self.storage.delete(job_id)
            set_stored_bytes(self.client, owner, job_id, 0)


def _ids(raw: object) -> list[str]:
    return [as_text(item) for item in raw] if isinstance(raw, list) else []
