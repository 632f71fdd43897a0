"""The prediction log (worker.prediction_log) on a real Redis and a real folder: what a task
appends is what the drain writes to Parquet, bounded in Redis and on disk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from irisq.schema import FEATURES, SPECIES
from irisq.settings import Settings
from worker import prediction_log
from worker.inference import ScoredGroup
from worker.prediction_log import Drain
from worker.scored import ScoredRows


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/12")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


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
    table = prediction_log.read(drain.folder, now - timedelta(days=1), now + timedelta(days=1))
    logged: dict[str, list[Any]] = table.to_pydict()
    return logged


def test_every_row_is_written_with_its_job_version_and_answer(
    client: redis.Redis, drain: Drain
) -> None:
    small, large = _group(6, seed=1), _group(2_500, seed=2, version="4")
    before = datetime.now(UTC)
    _append(client, [("job-a", 2), ("job-b", 1), ("job-c", 3)], small)
    _append(client, [("job-big", 2_500)], large)  # five entries of at most 512 rows
    assert client.xlen(prediction_log.STREAM) == 6

    written = drain.once()

    assert written == 2_506
    assert client.xlen(prediction_log.STREAM) == 0  # trimmed once written
    assert drain.once() == 0  # nothing twice
    logged = _everything(drain)
    assert logged["job_id"] == ["job-a"] * 2 + ["job-b"] + ["job-c"] * 3 + ["job-big"] * 2_500
    assert logged["model_version"] == ["3"] * 6 + ["4"] * 2_500
    assert set(logged["kind"]) == {"prediction"}
    for i, feature in enumerate(FEATURES):
        expected = np.concatenate([small.features[:, i], large.features[:, i]])
        assert np.allclose(logged[feature], expected, atol=1e-6)
    best = np.concatenate([small.answers.best, large.answers.best])
    assert logged["species"] == [SPECIES[b] for b in best]
    assert np.allclose(logged["probability_virginica"][:6], small.answers.probabilities[:, 2])
    times = logged["time"]
    assert all(before - timedelta(seconds=5) <= t <= datetime.now(UTC) for t in times)
    files = list(drain.folder.glob("*/*.parquet"))
    assert len(files) == 1
    assert files[0].parent.name == datetime.now(UTC).strftime("%Y-%m-%d")


def test_an_entry_not_written_by_a_worker_is_skipped(client: redis.Redis, drain: Drain) -> None:
    _append(client, [("before", 2)], _group(2))
    client.xadd(prediction_log.STREAM, {"k": "prediction", "v": "3", "j": "[]", "x": b"\x00"})
    client.xadd(prediction_log.STREAM, {"y": b"\x09", "j": '[["x", 1]]', "x": b"", "p": b""})
    _append(client, [("after", 1)], _group(1))

    assert drain.once() == 3

    assert _everything(drain)["job_id"] == ["before", "before", "after"]


def test_the_stream_stays_bounded_while_nothing_drains(client: redis.Redis) -> None:
    for _ in range(prediction_log.MAX_ENTRIES + 1_000):
        _append(client, [("job", 1)], _group(1))

    # Trimmed by Redis as entries come (approximately: by whole internal nodes).
    assert client.xlen(prediction_log.STREAM) < prediction_log.MAX_ENTRIES + 200


def test_days_past_retention_and_files_past_the_size_bound_are_deleted(
    client: redis.Redis, tmp_path: Path
) -> None:
    folder = tmp_path / "log"
    drain = Drain(client, Settings(prediction_log_dir=folder, prediction_log_max_bytes=1024**2))
    old = folder / (datetime.now(UTC) - timedelta(days=31)).strftime("%Y-%m-%d")
    old.mkdir(parents=True)
    (old / "1-0.parquet").write_bytes(b"old")
    recent = folder / (datetime.now(UTC) - timedelta(days=29)).strftime("%Y-%m-%d")
    recent.mkdir(parents=True)
    (recent / "1-0.parquet").write_bytes(b"kept")
    for seed in (1, 2):  # two drains of ~0.8 MB each: together past 1 MiB
        _append(client, [("job", 24_000)], _group(24_000, seed=seed))
        drain.once()

    files = sorted(folder.glob("*/*.parquet"))

    assert not old.exists()
    assert (recent / "1-0.parquet").exists() is False  # the oldest file went first
    assert sum(f.stat().st_size for f in files) <= 1024**2
    assert len([f for f in files if f.parent.name == datetime.now(UTC).strftime("%Y-%m-%d")]) == 1


def _rows(folder: Path, since: datetime, until: datetime) -> int:
    return int(prediction_log.read(folder, since, until).num_rows)


def test_a_window_reads_only_its_rows(client: redis.Redis, drain: Drain) -> None:
    _append(client, [("job", 3)], _group(3))
    drain.once()
    now = datetime.now(UTC)

    assert _rows(drain.folder, now - timedelta(hours=1), now + timedelta(minutes=1)) == 3
    assert _rows(drain.folder, now + timedelta(minutes=1), now + timedelta(hours=1)) == 0
    assert _rows(drain.folder / "none", now - timedelta(hours=1), now) == 0
