"""The reconciler: finds accepted jobs that no queue holds any more, and sends them again.

Redis writes its append-only file every second, so a crash can lose the last second of
queue pushes while the job records written just before survive (or the reverse: a record
is restored and its task is not). Every few seconds one worker (a Redis lock elects it)
looks at jobs queued longer than `reconcile_after_seconds`, and at attempts that started
long ago and never ended, and re-sends those whose task is in no queue and held by no
worker. A job delivered twice is harmless: records store one outcome, attempts are capped.

The same round keeps every key within its stored jobs and files (worker.retention), and
deletes the batch files of jobs whose records have expired.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import redis
from celery import Celery

from irisq import celery_messages
from irisq.batch_storage import open_storage
from irisq.ids import is_job_id
from irisq.job_types import JobStatus
from irisq.jobs import JobStore
from irisq.queueing import send
from irisq.settings import Settings
from irisq.tasks import QUEUES
from worker.retention import Retention

logger = logging.getLogger(__name__)

LOCK = "irisq:lock:reconciler"
# An upload's folder exists a moment before its job record: never sweep one that young.
ORPHAN_FILES_AFTER_SECONDS = 3600


def task_ids_held(client: redis.Redis, queues: Iterable[str] = QUEUES) -> set[str]:
    """Ids of the jobs whose tasks wait in `queues` or are delivered and not yet acknowledged
    (a prediction group's task holds the ids of all its jobs)."""
    held: set[str] = set()
    for queue in queues:
        for raw in client.lrange(queue, 0, -1):
            held.update(celery_messages.job_ids(raw))
    for raw in client.hvals(celery_messages.UNACKED):
        held.update(celery_messages.job_ids(raw))
    return held


class Reconciler:
    def __init__(self, settings: Settings, app: Celery, store: JobStore) -> None:
        self.settings = settings
        self.app = app
        self.store = store
        # An attempt that started this long ago has outlived its hard time limit and
        # Redis's own re-delivery: its task is lost if no queue holds it.
        self.stale_running_seconds = (
            settings.visibility_timeout_seconds + settings.longest_time_limit + 60
        )
        self.retention = Retention(settings, store)

    def run_once(self) -> list[str]:
        """One round; the ids of the jobs sent again."""
        now = time.time()
        client = self.store.redis
        candidates = self.store.queued_before(now - self.settings.reconcile_after_seconds)
        candidates += self.store.running_before(now - self.stale_running_seconds)
        resent: list[str] = []
        held: set[str] | None = None
        for job_id in candidates:
            if not is_job_id(job_id):  # ids from Redis are not trusted either
                self.store.forget_index_entry(job_id)
                continue
            status = self.store.status(job_id)
            if status is None:  # expired: only the index entry was left
                self.store.forget_index_entry(job_id)
                continue
            if status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                continue
            if held is None:  # read the queues once per round, and only when needed
                held = task_ids_held(client)
            if job_id in held:
                self.store.touch_index_entry(job_id, status, now)  # waiting its turn
                continue
            task = self.store.task(job_id)
            if task is None or self.store.status(job_id) is not status:  # it moved meanwhile
                continue
            send(self.app, job_id, task)
            self.store.touch_index_entry(job_id, status, now)
            logger.warning("job was in no queue: sent it again", extra={"job_id": job_id})
            resent.append(job_id)
        self.retention.run()
        self.sweep_batch_files(now)
        return resent

    def sweep_batch_files(self, now: float) -> list[str]:
        """Delete the files of batches whose job records have expired (ids of those jobs)."""
        removed: list[str] = []
        storage = open_storage(self.settings)
        for job_id in storage.jobs():
            if self.store.redis.exists(self.store.key(job_id)):
                continue
            written = storage.last_written(job_id)
            if written is not None and now - written < ORPHAN_FILES_AFTER_SECONDS:
                continue  # an upload in progress has no record yet
            storage.delete(job_id)
            removed.append(job_id)
        if removed:
            logger.info("removed the files of %d expired batch job(s)", len(removed))
        return removed

    def loop(self, stopping: threading.Event) -> None:
        every = self.settings.reconcile_every_seconds
        while not stopping.wait(every):
            try:
                # One worker per round: the lock expires on its own if this one dies.
                with self.store.redis.lock(LOCK, timeout=max(every * 4, 30), blocking=False):
                    self.run_once()
            except redis.exceptions.LockError:
                continue  # another worker holds it this round
            except Exception as exc:  # Redis away for a while: try again next round
                logger.warning("reconciliation round failed: %s", exc)
