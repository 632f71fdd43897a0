"""Drift reports (irisq.drift): the logged rows of a window (worker.prediction_log) against
the flowers the champion was trained on.

Every version irisq trains is fitted on the same stratified 70 % of the Iris data
(worker.training.iris_split), so that is the reference, labels included. Per feature: the
population stability index over ten bins cut at the training data's deciles (shares floored
at 0.0001, so an empty bin counts as very unlikely, not infinitely), and scipy's two-sample
Kolmogorov-Smirnov test. The predicted species mix is compared with the training labels'
mix by PSI over the three species.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
import pyarrow as pa
import redis
from scipy.stats import ks_2samp

from irisq.drift import (
    CACHE_SECONDS,
    COMPUTING,
    KS_PVALUE_THRESHOLD,
    LATEST,
    PSI_THRESHOLD,
    DriftReport,
    FeatureDrift,
    Histogram,
    SpeciesCount,
    SpeciesMix,
    cache_key,
)
from irisq.schema import FEATURES, SPECIES
from irisq.settings import Settings
from worker import prediction_log
from worker.training import iris_split

logger = logging.getLogger(__name__)

BINS = 10
SHARE_FLOOR = 1e-4
# Deletes the turn only if it is still this report's (its window's cache key).
RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0"""


@lru_cache(maxsize=1)
def _training() -> tuple[np.ndarray, np.ndarray]:
    x_train, _, y_train, _ = iris_split()
    return x_train, y_train


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of `actual` shares against `expected` shares."""
    e = np.maximum(expected / max(expected.sum(), 1), SHARE_FLOOR)
    a = np.maximum(actual / max(actual.sum(), 1), SHARE_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def feature_drift(training: np.ndarray, recent: np.ndarray) -> FeatureDrift:
    # Inner edges at the training deciles (ties merged), outer ones wide enough for anything.
    inner = np.unique(np.quantile(training, np.linspace(0, 1, BINS + 1)[1:-1]))
    low = float(min(training.min(), recent.min()))
    high = float(max(training.max(), recent.max()))
    edges = np.unique(np.concatenate([[low], inner, [high]]))
    expected = np.histogram(training, edges)[0]
    actual = np.histogram(recent, edges)[0]
    test = ks_2samp(training, recent)
    value = psi(expected, actual)
    return FeatureDrift(
        psi=round(value, 6),
        ks_statistic=round(float(test.statistic), 6),
        ks_pvalue=float(test.pvalue),
        drift=value > PSI_THRESHOLD and float(test.pvalue) < KS_PVALUE_THRESHOLD,
        histogram=Histogram(
            edges=[round(float(e), 4) for e in edges],
            training=expected.tolist(),
            recent=actual.tolist(),
        ),
    )


def report(table: pa.Table, since: datetime, until: datetime) -> DriftReport:
    """The drift of the logged rows in `table` against the training data."""
    now = datetime.now(UTC)
    rows = int(table.num_rows)
    if rows == 0:
        return DriftReport(
            since=since,
            until=until,
            rows=0,
            model_versions=[],
            drift=None,
            drifted_features=[],
            features={},
            species=None,
            species_by_hour=[],
            computed_at=now,
        )
    x_train, y_train = _training()
    features = {
        name: feature_drift(x_train[:, i], table.column(name).to_numpy())
        for i, name in enumerate(FEATURES)
    }
    species = table.column("species").to_pylist()
    predicted = Counter(species)
    trained = Counter(y_train.tolist())
    expected = np.array([trained[s] for s in SPECIES], dtype=float)
    actual = np.array([predicted[s] for s in SPECIES], dtype=float)
    mix_psi = psi(expected, actual)
    drifted = [name for name, found in features.items() if found.drift]
    return DriftReport(
        since=since,
        until=until,
        rows=rows,
        model_versions=sorted(set(table.column("model_version").to_pylist()), key=int),
        drift=bool(drifted),
        drifted_features=drifted,
        features=features,
        species=SpeciesMix(
            training=_shares(expected),
            recent=_shares(actual),
            psi=round(mix_psi, 6),
            drift=mix_psi > PSI_THRESHOLD,
        ),
        species_by_hour=_by_hour(table.column("time").to_pylist(), species),
        computed_at=now,
    )


def _shares(counts: np.ndarray) -> dict[str, float]:
    return {s: round(float(c / counts.sum()), 6) for s, c in zip(SPECIES, counts, strict=True)}


def _by_hour(times: list[datetime], species_of_rows: list[str]) -> list[SpeciesCount]:
    hours: dict[datetime, Counter[str]] = {}
    for moment, species in zip(times, species_of_rows, strict=True):
        hour = moment.replace(minute=0, second=0, microsecond=0)
        hours.setdefault(hour, Counter())[species] += 1
    return [
        SpeciesCount(hour=hour, counts={s: counts[s] for s in SPECIES})
        for hour, counts in sorted(hours.items())
    ]


def compute_and_keep(client: redis.Redis, settings: Settings, since: str, until: str) -> None:
    """The task's work: the report of [since, until), kept in Redis for the API (and as the
    latest, for /metrics); then the turn (COMPUTING) goes to the next report."""
    start, end = datetime.fromisoformat(since), datetime.fromisoformat(until)
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise ValueError(f"not a window: {since[:40]!r} to {until[:40]!r}")  # never sent
    key = cache_key(start, end)
    try:
        found = report(prediction_log.read(settings.prediction_log_dir, start, end), start, end)
        text = found.model_dump_json()
        with client.pipeline(transaction=False) as pipe:
            pipe.set(key, text, ex=CACHE_SECONDS)
            pipe.set(LATEST, text)
            pipe.execute()
    finally:  # released only if the turn is still this report's (it expires on its own)
        client.eval(RELEASE, 1, COMPUTING, key)
    drifted = json.dumps(found.drifted_features) if found.rows else "no verdict"
    logger.info("drift report over %d rows: drifted %s", found.rows, drifted)
