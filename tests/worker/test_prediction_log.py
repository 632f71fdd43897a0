"""The prediction log (worker.prediction_log) on a real Redis and a real folder: what a task
appends is what the drain writes to Parquet, once, bounded in Redis and on disk, whatever
else the stream holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from irisq.schema import FEATURES, SPECIES
from irisq.settings import Settings
from tests.worker.conftest import redis_database
from worker import prediction_log
from worker.inference import ScoredGroup
from worker.prediction_log_drain import Drain
from worker.scored import ScoredRows

A, B, C, BIG = (str(uuid.uuid4()) for _ in range(4))


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis_database(redis_url, 12) as client:
        yield client


@pytest.fixture
def drain(client: redis.Redis, tmp_path: Path) -> Drain:
    return Drain(client, Settings(prediction_log_dir=tmp_path / "log"))


def _group(rows: int, seed: int = 0, version: str = "3") -> ScoredGroup:
    generator = np.random.default_rng(seed)
    features = np.round(generator.uniform(0.1, 8.0, (rows, len(FEATURES))), 1)
    probabilities = generator.dirichlet([1, 1, 1], rows)
    answers = ScoredRows(probabilities.argmax(axis=1), np.round(probabilities, 6))
    return ScoredGroup("champion", version, features, answers)


def _append(client: redis.Redis, jobs: list[tuple[str, int]], group: ScoredGroup) -> None:
    with client.pipeline(transaction=False) as pipe:
        prediction_log.append(pipe, "prediction", jobs, group)
        pipe.execute()


def _everything(drain: Drain) -> dict[str, list[Any]]:
    now = datetime.now(UTC)
    table = prediction_log.read(drain.folder, now - timedelta(days=2), now + timedelta(days=1))
    logged: dict[str, list[Any]] = table.to_pydict()
    return logged


def test_every_row_is_written_with_its_job_version_and_answer(
    client: redis.Redis, drain: Drain
) -> None:
    small, large = _group(6, seed=1), _group(700, seed=2, version="4")
    before = datetime.now(UTC)
    _append(client, [(A, 2), (B, 1), (C, 3)], small)
    _append(client, [(BIG, 700)], large)  # three entries of at most 256 rows
    assert client.xlen(prediction_log.STREAM) == 4

    written = drain.once()

    assert written == 706
    assert client.xlen(prediction_log.STREAM) == 0  # trimmed once written
    logged = _everything(drain)
    assert logged["job_id"] == [A] * 2 + [B] + [C] * 3 + [BIG] * 700
    assert logged["model_version"] == ["3"] * 6 + ["4"] * 700
    assert set(logged["kind"]) == {"prediction"}
    for i, feature in enumerate(FEATURES):  # exactly what was scored: float64
        assert logged[feature] == np.concatenate([small.features, large.features])[:, i].tolist()
    best = np.concatenate([small.answers.best, large.answers.best])
    assert logged["species"] == [SPECIES[b] for b in best]
    assert logged["probability_virginica"][:6] == small.answers.probabilities[:, 2].tolist()
    assert all(before - timedelta(seconds=5) <= t <= datetime.now(UTC) for t in logged["time"])


def test_a_drain_that_died_before_recording_its_progress_writes_no_row_twice(
    client: redis.Redis, drain: Drain
) -> None:
    class DiesAfterWriting(Drain):
        def advance(self, newest: str) -> None:
            raise ConnectionError("the process was killed here")

    _append(client, [(A, 5)], _group(5))
    with pytest.raises(ConnectionError):
        DiesAfterWriting(client, Settings(prediction_log_dir=drain.folder)).once()
    _append(client, [(B, 2)], _group(2))

    assert drain.once() == 7  # the same entries again, and the new one
    assert drain.once() == 0
    assert _everything(drain)["job_id"] == [A] * 5 + [B] * 2  # one file, rewritten whole


def _raw(client: redis.Redis, **fields: Any) -> None:
    entry: dict[str, Any] = {"k": "prediction", "v": "3", "j": json.dumps([[A, 1]])}
    entry |= {"y": b"\x00", "x": np.zeros(4).tobytes(), "p": np.zeros(3).tobytes()}
    client.xadd(prediction_log.STREAM, entry | fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"k": b"\xff\xfe"},  # not text
        {"v": "../3"},
        {"j": json.dumps([[A, 1_000_000_000]])},  # a count far past the rows: never expanded
        {"j": json.dumps([[A, -1], [B, 2]])},
        {"j": json.dumps([["not-a-job-id", 1]])},
        {"j": "{"},
        {"y": b"", "j": "[]", "x": b"", "p": b""},  # no rows at all
        {"y": b"\x07"},  # no such species
        {"x": b"\x00" * 3},
    ],
    ids=[
        "kind-bytes",
        "version",
        "huge-count",
        "negative-count",
        "job-id",
        "json",
        "empty",
        "species",
        "features",
    ],
)
def test_an_entry_not_written_by_a_worker_is_skipped(
    client: redis.Redis, drain: Drain, fields: dict[str, Any]
) -> None:
    _append(client, [(A, 2)], _group(2))
    _raw(client, **fields)
    client.xadd(prediction_log.STREAM, {"something": "else"})
    _append(client, [(B, 1)], _group(1))

    assert drain.once() == 3

    assert _everything(drain)["job_id"] == [A, A, B]
    assert client.xlen(prediction_log.STREAM) == 0  # passed over, not stuck on


def test_the_stream_stays_bounded_while_nothing_drains(client: redis.Redis) -> None:
    for _ in range(prediction_log.MAX_ENTRIES + 500):
        _append(client, [(A, 1)], _group(1))

    # Trimmed by Redis as entries come (approximately: by whole internal nodes).
    assert client.xlen(prediction_log.STREAM) < prediction_log.MAX_ENTRIES + 200


def test_days_past_retention_and_files_past_the_size_bound_are_deleted(
    client: redis.Redis, drain: Drain
) -> None:
    today = datetime.now(UTC)
    old, kept = (drain.folder / (today - timedelta(days=d)).strftime("%Y-%m-%d") for d in (30, 29))
    for day in (old, kept):
        day.mkdir(parents=True)
        (day / "1-0.parquet").write_bytes(b"x" * 10)
    _append(client, [(A, 3_000)], _group(3_000, seed=1))
    drain.once()
    drain.prune(today.timestamp())  # 30 days kept: today and the 29 before
    first = next(f for f in drain.folder.glob("*/*.parquet") if f.parent not in (old, kept))
    assert not old.exists()
    assert (kept / "1-0.parquet").exists()

    drain.max_bytes = int(first.stat().st_size * 1.5)  # room for one drain's file, not two
    _append(client, [(B, 3_000)], _group(3_000, seed=2))
    drain.once()
    drain.prune(today.timestamp())

    files = list(drain.folder.glob("*/*.parquet"))
    assert len(files) == 1  # the oldest went first: the 10 bytes, then the first drain
    assert _everything(drain)["job_id"] == [B] * 3_000


def test_a_window_reads_only_its_rows_whatever_its_time_zone(
    client: redis.Redis, drain: Drain
) -> None:
    _append(client, [(A, 3)], _group(3))
    drain.once()
    now = datetime.now(UTC)

    def rows(folder: Path, since: datetime, until: datetime) -> int:
        return int(prediction_log.read(folder, since, until).num_rows)

    assert rows(drain.folder, now - timedelta(hours=1), now + timedelta(minutes=1)) == 3
    assert rows(drain.folder, now + timedelta(minutes=1), now + timedelta(hours=1)) == 0
    assert rows(drain.folder / "none", now - timedelta(hours=1), now) == 0
    # The same window written in UTC+14 (often another calendar day) or naive UTC.
    east = now.astimezone(timezone(timedelta(hours=14)))
    assert rows(drain.folder, east - timedelta(hours=1), east + timedelta(minutes=1)) == 3
    naive = now.replace(tzinfo=None)
    assert rows(drain.folder, naive - timedelta(hours=1), naive + timedelta(minutes=1)) == 3


def test_a_batch_keeps_a_share_of_its_rows_and_no_more_than_its_limit(
    client: redis.Redis, drain: Drain
) -> None:
    group = _group(10_000, seed=3)
    sample = prediction_log.BatchSample(0.1, limit=1_500, generator=np.random.default_rng(1))
    for start in range(0, 10_000, 2_000):  # the scorer's chunks
        stop = start + 2_000
        sample.take(
            group.features[start:stop],
            group.answers.best[start:stop],
            group.answers.probabilities[start:stop],
        )
    sample.keep(client, BIG, "4")
    empty = prediction_log.BatchSample(0.0, limit=1_500)
    empty.keep(client, A, "4")

    assert drain.once() == sample.rows
    assert 900 < sample.rows < 1_100  # ~10 % of 10,000, within the limit
    logged = _everything(drain)
    assert set(logged["job_id"]) == {BIG}
    assert set(logged["kind"]) == {"batch"}
    rows = {tuple(row) for row in group.features.tolist()}
    features = zip(*(logged[name] for name in FEATURES), strict=True)
    assert all(tuple(row) in rows for row in features)  # rows of the batch, as scored

    capped = prediction_log.BatchSample(1.0, limit=1_500)
    capped.take(group.features, group.answers.best, group.answers.probabilities)
    assert capped.rows == 1_500
