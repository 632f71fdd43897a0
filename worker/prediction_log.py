"""The prediction log: every row the predict workers score online (`/v1/predictions`,
`/invocations`), with its time, job, model version, the four measurements, the species and
the probabilities: what drift is measured on, and what traces an answer back.

Writing must cost a task next to nothing and work from any number of hosts, so a task adds
its rows to a Redis stream in one XADD (a few hundred bytes for a typical group: numbers as
float64 bytes, not text, so what a client sent and got is kept exactly). The stream is
capped at MAX_ENTRIES (approximately, by Redis), so it stays small whatever happens. One
worker of the train queue drains it every DRAIN_SECONDS into Parquet files, one per drain
and day,
`IRISQ_PREDICTION_LOG_DIR/YYYY-MM-DD/<first entry id>.parquet`, then trims what it wrote
from the stream. A drain that dies before recording its progress writes the same entries to
the same file name again: nothing is logged twice. Files past IRISQ_PREDICTION_LOG_DAYS, and
the oldest ones past IRISQ_PREDICTION_LOG_MAX_BYTES, are deleted. While no train worker
drains, the stream keeps only its last MAX_ENTRIES entries: the log is bounded, not
complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis

from irisq.jobs import as_text
from irisq.schema import FEATURES, SPECIES
from irisq.settings import Settings
from worker.inference import ScoredGroup

logger = logging.getLogger(__name__)

STREAM = "irisq:prediction-log"
DRAINED = "irisq:prediction-log:drained"  # the id of the last entry written to a file
LOCK = "irisq:lock:prediction-log"
ROWS_PER_ENTRY = 512  # a 10,000-row job is twenty entries: each stays under ~30 KB
MAX_ENTRIES = 2000  # at most ~60 MB of stream, typically well under 1 MB
DRAIN_SECONDS = 5.0
ENTRIES_PER_DRAIN = 5000

SCHEMA = pa.schema(
    [
        ("time", pa.timestamp("ms", tz="UTC")),
        ("kind", pa.string()),
        ("job_id", pa.string()),
        ("model_version", pa.string()),
        *[(feature, pa.float64()) for feature in FEATURES],
        ("species", pa.string()),
        *[(f"probability_{species}", pa.float64()) for species in SPECIES],
    ]
)


def append(
    pipe: redis.client.Pipeline, kind: str, jobs: Sequence[tuple[str, int]], group: ScoredGroup
) -> None:
    """Queue on `pipe` the entries of `group`'s rows: `jobs` are (job id, rows) in order."""
    features = np.ascontiguousarray(group.features, dtype="<f8")
    best = group.answers.best.astype(np.uint8)
    probabilities = np.ascontiguousarray(group.answers.probabilities, dtype="<f8")
    owners = [job_id for job_id, rows in jobs for _ in range(rows)]
    for start in range(0, len(best), ROWS_PER_ENTRY):
        stop = min(start + ROWS_PER_ENTRY, len(best))
        pipe.xadd(
            STREAM,
            {
                "k": kind,
                "v": group.version,
                "j": json.dumps(_runs(owners[start:stop])),
                "x": features[start:stop].tobytes(),
                "y": best[start:stop].tobytes(),
                "p": probabilities[start:stop].tobytes(),
            },
            maxlen=MAX_ENTRIES,
            approximate=True,
        )


def _runs(owners: list[str]) -> list[tuple[str, int]]:
    """[(job id, consecutive rows)]: a job's rows are contiguous in an entry."""
    runs: list[tuple[str, int]] = []
    for owner in owners:
        if runs and runs[-1][0] == owner:
            runs[-1] = (owner, runs[-1][1] + 1)
        else:
            runs.append((owner, 1))
    return runs


def _decoded(entry_id: str, fields: dict[str, bytes]) -> dict[str, Any] | None:
    """An entry's rows as columns, or None when it is not one `append` wrote."""
    try:
        rows = len(fields["y"])
        runs = json.loads(fields["j"])
        owners = [str(job_id) for job_id, count in runs for _ in range(int(count))]
        features = np.frombuffer(fields["x"], dtype="<f8").reshape(rows, len(FEATURES))
        probabilities = np.frombuffer(fields["p"], dtype="<f8").reshape(rows, len(SPECIES))
        best = np.frombuffer(fields["y"], dtype=np.uint8)
        if len(owners) != rows or (best >= len(SPECIES)).any():
            return None
        milliseconds = int(entry_id.split("-")[0])
    except (KeyError, ValueError, TypeError):
        return None
    return {
        "time": [milliseconds] * rows,
        "kind": [fields["k"].decode()[:20]] * rows,
        "job_id": owners,
        "model_version": [fields["v"].decode()[:20]] * rows,
        **{feature: features[:, i] for i, feature in enumerate(FEATURES)},
        "species": [SPECIES[b] for b in best.tolist()],
        **{f"probability_{s}": probabilities[:, i] for i, s in enumerate(SPECIES)},
    }


class Drain:
    """Moves the stream's entries into daily Parquet files and keeps the folder bounded."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.client = client
        self.folder = settings.prediction_log_dir
        self.keep_days = settings.prediction_log_days
        self.max_bytes = settings.prediction_log_max_bytes

    def once(self, now: float | None = None) -> int:
        """Write what the stream holds past the last drain; the rows written."""
        last = as_text(self.client.get(DRAINED) or b"0-0")
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]],
            self.client.xrange(STREAM, min=f"({last}", count=ENTRIES_PER_DRAIN),
        )
        written = 0
        if entries:
            by_day: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
            for raw_id, raw_fields in entries:
                entry_id = as_text(raw_id)
                fields = {as_text(k): v for k, v in raw_fields.items()}
                columns = _decoded(entry_id, fields)
                if columns is None:
                    logger.warning("prediction log entry %s is not one of ours: skipped", entry_id)
                    continue
                day = datetime.fromtimestamp(columns["time"][0] / 1000, UTC).strftime("%Y-%m-%d")
                by_day[day].append(columns)
            first = as_text(entries[0][0])
            for day, parts in by_day.items():
                written += self._write(day, first, parts)
            newest = as_text(entries[-1][0])
            self.client.set(DRAINED, newest)
            self.client.xtrim(STREAM, minid=_after(newest))
        self.prune(time.time() if now is None else now)
        return written

    def _write(self, day: str, first: str, parts: list[dict[str, Any]]) -> int:
        table = pa.concat_tables(pa.Table.from_pydict(part, schema=SCHEMA) for part in parts)
        folder = self.folder / day
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{first}.parquet"
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        pq.write_table(table, partial)
        partial.replace(target)  # whole or not there: a reader never sees half a file
        return int(table.num_rows)

    def prune(self, now: float) -> None:
        """Delete the days past retention, then the oldest files past the size bound."""
        if not self.folder.is_dir():
            return
        oldest_kept = (datetime.fromtimestamp(now, UTC) - timedelta(days=self.keep_days)).date()
        days = sorted(p for p in self.folder.iterdir() if p.is_dir() and _day(p.name))
        for day in days:
            if _day(day.name) < oldest_kept:
                shutil.rmtree(day, ignore_errors=True)
        files = sorted(self.folder.glob("*/*.parquet"))  # by day, then by entry id
        total = sum(f.stat().st_size for f in files)
        for file in files:
            if total <= self.max_bytes:
                break
            total -= file.stat().st_size
            file.unlink(missing_ok=True)

    def loop(self, stopping: threading.Event) -> None:
        while not stopping.wait(DRAIN_SECONDS):
            try:
                # One drainer at a time: the lock expires on its own if this one dies.
                with self.client.lock(LOCK, timeout=60, blocking=False):
                    self.once()
            except redis.exceptions.LockError:
                continue
            except Exception as exc:  # Redis or the disk away for a while: next round
                logger.warning("prediction log drain failed: %s", exc)


def _after(entry_id: str) -> str:
    milliseconds, sequence = entry_id.split("-")
    return f"{milliseconds}-{int(sequence) + 1}"


def _day(name: str) -> Any:
    try:
        return datetime.strptime(name, "%Y-%m-%d").date()
    except ValueError:
        return None


def read(folder: Path, since: datetime, until: datetime) -> pa.Table:
    """The logged rows with `since <= time < until` (an empty table when there are none)."""
    files = [
        f
        for day in sorted(folder.glob("*"))
        if (date := _day(day.name)) is not None and since.date() <= date <= until.date()
        for f in sorted(day.glob("*.parquet"))
    ]
    if not files:
        return SCHEMA.empty_table()
    table = pa.concat_tables(pq.read_table(f, schema=SCHEMA) for f in files)
    times = table.column("time")
    start = pa.scalar(since, type=pa.timestamp("ms", tz="UTC"))
    end = pa.scalar(until, type=pa.timestamp("ms", tz="UTC"))
    return table.filter(pc.and_(pc.greater_equal(times, start), pc.less(times, end)))
