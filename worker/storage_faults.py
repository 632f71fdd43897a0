"""A batch whose storage fails mid-way waits for it and starts again, a few times.

Object storage has bad minutes (a restart, a network blip). A batch that meets one records
that it is waiting, polls the storage until it answers (or a while passes), then scores the
file again from the start: its outputs appear only once whole, so the earlier try left
nothing behind to mix in. Past its tries it fails with `storage_unavailable`, in words that
name no host or bucket (the log has the details).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

from redis.exceptions import RedisError

from irisq.batch_storage import StorageUnavailableError
from irisq.batches import INPUT, BatchFiles
from irisq.jobs import JobStore
from irisq.settings import get_settings
from worker.errors import ExpectedJobError
from worker.jobs import stop_if_canceled

logger = logging.getLogger(__name__)

T = TypeVar("T")
POLL_SECONDS = 1.0


class BatchStorageError(ExpectedJobError):
    error_type = "storage_unavailable"


def storage_fault(exc: BaseException) -> bool:
    """The storage failed (not the file: a missing input means the job was deleted)."""
    if isinstance(exc, StorageUnavailableError):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)


def despite_storage_faults(
    work: Callable[[], T],
    probe: Callable[[], object],
    attempts: int,
    wait_seconds: float,
    waiting: Callable[[int], None],
) -> T:
    """`work()`, tried again after a storage fault once `probe()` passes (it reads what the
    work reads: a storage that answers HEAD may not serve data yet, as SeaweedFS just after
    a restart); `waiting(try)` is called while it waits (it records the stage and raises if
    the job was canceled)."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as exc:
            if not storage_fault(exc):
                raise
            logger.warning("batch storage failed (try %d of %d): %s", attempt, attempts, exc)
            if attempt == attempts:
                break
        _wait_for(probe, wait_seconds, waiting, attempt)
    raise BatchStorageError(
        f"the batch storage failed on each of {attempts} tries; the file was not scored "
        "(upload it again later)"
    )


def _wait_for(
    probe: Callable[[], object], seconds: float, waiting: Callable[[int], None], attempt: int
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        waiting(attempt)
        try:
            probe()
            return
        except Exception as exc:
            if not storage_fault(exc):
                raise
            if time.monotonic() >= deadline:
                return  # one more try will say whether it is still away
        time.sleep(POLL_SECONDS)


def for_batch(work: Callable[[], T], store: JobStore, files: BatchFiles) -> T:
    """`despite_storage_faults` as a batch's tasks use it: probed by reading the upload's
    first byte (as scoring reads it), waiting in the stage "waiting for the batch storage",
    stopped if the job is canceled meanwhile; tries and waits from the settings."""
    settings = get_settings()
    return despite_storage_faults(
        work,
        lambda: _first_byte(files),
        settings.storage_attempts,
        settings.storage_wait_seconds,
        _waiting(store, files.job_id),
    )


def _first_byte(files: BatchFiles) -> bytes:
    with files.reader(INPUT) as handle:
        return handle.read(1)


def stored_size(files: BatchFiles) -> int:
    """What the batch stores, for its key's quota (0 while the storage does not answer: the
    next reconciler round counts what is there)."""
    try:
        return files.size()
    except StorageUnavailableError:
        return 0


def _waiting(store: JobStore, job_id: str) -> Callable[[int], None]:
    def waiting(attempt: int) -> None:
        stop_if_canceled(store, job_id)
        with suppress(RedisError):
            store.progress(job_id, 0.0, f"waiting for the batch storage (try {attempt + 1})")

    return waiting
