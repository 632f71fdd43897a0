"""Draining the prediction log (worker.prediction_log) from its Redis stream into files.

One worker of the train queue (a Redis lock) drains the stream every DRAIN_SECONDS into
Parquet files, one per drain and UTC day,
`IRISQ_PREDICTION_LOG_DIR/YYYY-MM-DD/<id of the entry before>.parquet`, then records how
far it got and trims what it wrote. A drain that dies before recording that writes the same
file name again: its rows are not duplicated. An entry that is not one a worker wrote is
skipped, never stuck on. Days past IRISQ_PREDICTION_LOG_DAYS, then the oldest files past
IRISQ_PREDICTION_LOG_MAX_BYTES, are deleted.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

import pyarrow as pa
import pyarrow.parquet as pq
import redis

from irisq.jobs import as_text
from irisq.settings import Settings
from worker.prediction_log import STREAM, day_of, entry_order, entry_table

logger = logging.getLogger(__name__)

DRAINED = "irisq:prediction-log:drained"  # the id of the last entry written to a file
LOCK = "irisq:lock:prediction-log"
DRAIN_SECONDS = 2.0
ENTRIES_PER_DRAIN = 1000  # a drain's batch; a round drains until the stream is empty
STALE_PARTIAL_SECONDS = 3600.0
# Retention is checked after a round that wrote, else at most this often (a day passing, or
# files aging out): each check lists and stats every file of the folder.
PRUNE_EVERY_SECONDS = 60.0


class Drain:
    """Moves the stream's entries into daily Parquet files and keeps the folder bounded."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.folder = settings.prediction_log_dir
        self.keep_days = settings.prediction_log_days
        self.max_bytes = settings.prediction_log_max_bytes
        self._pruned_at = float("-inf")

    def once(self) -> int:
        """Write one batch of what the stream holds past the last drain; the rows written."""
        last = as_text(self.client.get(DRAINED) or b"0-0")
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            self.client.xrange(STREAM, min=f"({last}", count=ENTRIES_PER_DRAIN),
        )
        if not entries:
            return 0
        by_day: defaultdict[date, list[pa.Table]] = defaultdict(list)
        for raw_id, raw_fields in entries:
            entry_id = as_text(raw_id)
            table = entry_table(entry_id, {as_text(k): v for k, v in raw_fields.items()})
            if table is None:
                logger.warning("prediction log entry %s is not one of ours: skipped", entry_id)
                continue
            written_at = int(entry_id.split("-")[0]) / 1000  # a stream id is its time in ms
            by_day[datetime.fromtimestamp(written_at, UTC).date()].append(table)
        written = sum(self._write(day, last, tables) for day, tables in by_day.items())
        self.advance(as_text(entries[-1][0]))
        return written

    def advance(self, newest: str) -> None:
        """Record how far the files go, then trim the stream up to there."""
        self.client.set(DRAINED, newest)
        milliseconds, sequence = newest.split("-")
        self.client.xtrim(STREAM, minid=f"{milliseconds}-{int(sequence) + 1}")

    def _write(self, day: date, after: str, tables: list[pa.Table]) -> int:
        folder = self.folder / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{after}.parquet"
        # Hidden while written (Parquet readers skip names starting with "."), then renamed:
        # a reader sees the whole file or none of it.
        partial = folder / f".{target.name}.{os.getpid()}.partial"
        table = pa.concat_tables(tables)
        pq.write_table(table, partial)
        partial.replace(target)
        return int(table.num_rows)

    def prune(self, now: float) -> None:
        """Delete the days past retention and stale partial files, then the oldest files
        past the size bound (never the newest one)."""
        if not self.folder.is_dir():
            return
        today = datetime.fromtimestamp(now, UTC).date()
        first_kept = today - timedelta(days=self.keep_days - 1)
        days = sorted((d, p) for p in self.folder.iterdir() if (d := day_of(p.name)) is not None)
        for day, path in days:
            if day < first_kept:
                shutil.rmtree(path, ignore_errors=True)
        files: list[Path] = []
        for day, path in days:
            if first_kept <= day and path.is_dir():
                for partial in path.glob(".*.partial"):
                    if now - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
                        partial.unlink(missing_ok=True)
                files.extend(sorted(path.glob("*.parquet"), key=entry_order))
        sizes = [f.stat().st_size for f in files]
        total = sum(sizes)
        for file, size in zip(files[:-1], sizes, strict=False):
            if total <= self.max_bytes:
                break
            file.unlink(missing_ok=True)
            total -= size

    def loop(self, stopping: threading.Event) -> None:
        while not stopping.wait(DRAIN_SECONDS):
            try:
                # One drainer at a time: the lock expires on its own if this one dies.
                with self.client.lock(LOCK, timeout=60, blocking=False) as lock:
                    wrote = False
                    while self.once() and not stopping.is_set():
                        wrote = True
                        lock.extend(60, replace_ttl=True)  # a backlog: go on while it lasts
                    now = time.time()
                    if wrote or now - self._pruned_at >= PRUNE_EVERY_SECONDS:
                        self.prune(now)
                        self._pruned_at = now
            except redis.exceptions.LockError:
                continue
            except Exception as exc:  # Redis or the disk away for a while: next round
                logger.warning("prediction log drain failed: %s", exc)
