"""The prediction log: the rows the predict workers score online (`/v1/predictions`,
`/invocations`) for jobs that succeed, and a sample of each batch file's (BatchSample), with
the time, job, model version, the four measurements, the species and the probabilities: what
drift is measured on, and what traces an answer back.

Writing must cost a task next to nothing and work from any number of hosts, so a task adds
its rows to a Redis stream in the round trip of its job metrics (numbers as float64 bytes,
not text, so what a client sent and got is kept exactly; a few hundred bytes for a typical
task). The stream is capped at MAX_ENTRIES of at most ROWS_PER_ENTRY rows (approximately,
by Redis): at most ~30 MB, whatever happens. A train worker moves it into daily Parquet
files (worker.prediction_log_drain), which `read` reads back by time. While no train worker
drains (or when more entries come than it takes), the stream keeps only its newest entries:
the log is bounded, not complete.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import redis
from redis.client import Pipeline

from irisq.drift import as_utc
from irisq.ids import is_job_id
from irisq.schema import CHAMPION, FEATURES, SPECIES, is_version
from worker.inference import ScoredGroup
from worker.scored import ScoredRows

logger = logging.getLogger(__name__)

STREAM = "irisq:prediction-log"
ROWS_PER_ENTRY = 256  # ≤ ~14 KB of numbers and ≤ ~12 KB of job ids an entry
MAX_ENTRIES = 1000
BATCH_SAMPLE_LIMIT = 10_000  # rows of a batch file (or of one part) at most

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
SPECIES_ARRAY = pa.array(SPECIES)
TIME = SCHEMA.field("time").type


def append(pipe: Pipeline, kind: str, jobs: Sequence[tuple[str, int]], group: ScoredGroup) -> None:
    """Queue on `pipe` the entries of `group`'s rows: `jobs` are (job id, rows), in order."""
    features = np.ascontiguousarray(group.features, dtype="<f8")
    best = group.answers.best.astype(np.uint8)
    probabilities = np.ascontiguousarray(group.answers.probabilities, dtype="<f8")
    for start in range(0, len(best), ROWS_PER_ENTRY):
        stop = min(start + ROWS_PER_ENTRY, len(best))
        pipe.xadd(
            STREAM,
            {
                "k": kind,
                "v": group.version,
                "j": json.dumps(_jobs_between(jobs, start, stop)),
                "x": features[start:stop].tobytes(),
                "y": best[start:stop].tobytes(),
                "p": probabilities[start:stop].tobytes(),
            },
            maxlen=MAX_ENTRIES,
            approximate=True,
        )


class BatchSample:
    """A share of the rows a batch file's scorer (or one part's) scores, at most `limit`:
    a 10M-row file would otherwise be a stream of 40,000 entries."""

    def __init__(self, share: float, limit: int, generator: np.random.Generator | None = None):
        self.share = share
        self.limit = limit
        self._generator = generator or np.random.default_rng()
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows = 0

    def take(self, features: np.ndarray, best: np.ndarray, probabilities: np.ndarray) -> None:
        """Keep this share of a chunk's rows (`probabilities` rounded, in SPECIES order)."""
        room = self.limit - self.rows
        if room <= 0 or self.share <= 0:
            return
        chosen = np.flatnonzero(self._generator.random(len(best)) < self.share)[:room]
        if len(chosen):
            self._parts.append((features[chosen], best[chosen], probabilities[chosen]))
            self.rows += len(chosen)

    def keep(self, client: redis.Redis, job_id: str, version: str) -> None:
        """Add the kept rows to the log as the batch job's (never fails the batch)."""
        if not self.rows:
            return
        features, best, probabilities = (np.concatenate(p) for p in zip(*self._parts, strict=True))
        group = ScoredGroup(CHAMPION, version, features, ScoredRows(best, probabilities))
        try:
            with client.pipeline(transaction=False) as pipe:
                append(pipe, "batch", [(job_id, self.rows)], group)
                pipe.execute()
        except redis.RedisError as exc:
            logger.warning("could not add the batch's sample to the prediction log: %s", exc)


def _jobs_between(jobs: Sequence[tuple[str, int]], start: int, stop: int) -> list[tuple[str, int]]:
    """The (job id, rows) of the group's rows `start` to `stop`."""
    found: list[tuple[str, int]] = []
    begin = 0
    for job_id, size in jobs:
        end = begin + size
        rows = min(end, stop) - max(begin, start)
        if rows > 0:
            found.append((job_id, rows))
        if end >= stop:
            break
        begin = end
    return found


def entry_table(entry_id: str, fields: dict[str, bytes]) -> pa.Table | None:
    """An entry's rows, or None when it is not one `append` wrote (whatever it holds)."""
    try:
        kind, version = fields["k"].decode("ascii"), fields["v"].decode("ascii")
        rows = len(fields["y"])
        runs = json.loads(fields["j"])
        counts = [int(count) for _, count in runs]
        job_ids = [job_id for job_id, _ in runs]
        if (
            kind not in ("prediction", "batch")
            or not is_version(version)
            or rows == 0
            or any(count <= 0 for count in counts)
            or sum(counts) != rows  # checked before any is expanded
            or not all(is_job_id(job_id) for job_id in job_ids)
        ):
            return None
        features = np.frombuffer(fields["x"], dtype="<f8").reshape(rows, len(FEATURES))
        probabilities = np.frombuffer(fields["p"], dtype="<f8").reshape(rows, len(SPECIES))
        best = np.frombuffer(fields["y"], dtype=np.uint8)
        if (best >= len(SPECIES)).any():
            return None
        milliseconds = int(entry_id.split("-")[0])
        columns = {
            "time": pa.array(np.full(rows, milliseconds, dtype="int64")).cast(TIME),
            "kind": pa.array([kind] * rows),
            "job_id": pa.array(np.repeat(np.array(job_ids, dtype=object), counts)),
            "model_version": pa.array([version] * rows),
            **{feature: pa.array(features[:, i]) for i, feature in enumerate(FEATURES)},
            "species": pc.take(SPECIES_ARRAY, pa.array(best)),
            **{f"probability_{s}": pa.array(probabilities[:, i]) for i, s in enumerate(SPECIES)},
        }
        return pa.Table.from_pydict(columns, schema=SCHEMA)
    except (KeyError, ValueError, TypeError, UnicodeDecodeError, pa.ArrowException):
        return None


def day_of(name: str) -> date | None:
    try:
        return datetime.strptime(name, "%Y-%m-%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None


def entry_order(file: Path) -> tuple[int, int]:
    milliseconds, _, sequence = file.stem.partition("-")
    try:
        return int(milliseconds), int(sequence or 0)
    except ValueError:
        return (0, 0)


def read(folder: Path, since: datetime, until: datetime) -> pa.Table:
    """The logged rows with `since <= time < until` (naive times are UTC; an empty table
    when there are none)."""
    since, until = as_utc(since), as_utc(until)
    files = [
        file
        for path in sorted(folder.glob("*"))
        if (day := day_of(path.name)) is not None and since.date() <= day <= until.date()
        for file in sorted(path.glob("*.parquet"), key=entry_order)
    ]
    if not files:
        return SCHEMA.empty_table()
    table = pa.concat_tables(pq.read_table(file, schema=SCHEMA) for file in files)
    times = table.column("time")
    start, end = pa.scalar(since, type=TIME), pa.scalar(until, type=TIME)
    return table.filter(pc.and_(pc.greater_equal(times, start), pc.less(times, end)))
