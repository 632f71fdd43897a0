"""Drift reports (worker.drift) on logged rows: flowers drawn from the Iris data drift on no
feature; the same flowers with petals 2 cm longer drift on petal length, and only there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import load_iris

from irisq.drift import KS_PVALUE_THRESHOLD, PSI_THRESHOLD
from irisq.schema import FEATURES, SPECIES
from worker.drift import report
from worker.prediction_log import SCHEMA

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ROWS = 5_000


def _logged(features: np.ndarray, species: list[str]) -> pa.Table:
    rows = len(features)
    times = [NOW - timedelta(minutes=90) + timedelta(seconds=i) for i in range(rows)]
    return pa.Table.from_pydict(
        {
            "time": times,
            "kind": ["prediction"] * rows,
            "job_id": ["00000000-0000-4000-8000-000000000000"] * rows,
            "model_version": ["3"] * rows,
            **{name: features[:, i] for i, name in enumerate(FEATURES)},
            "species": species,
            **{f"probability_{s}": [1 / 3] * rows for s in SPECIES},
        },
        schema=SCHEMA,
    )


@pytest.fixture(scope="module")
def drawn() -> tuple[np.ndarray, list[str]]:
    iris = load_iris()
    chosen = np.random.default_rng(2026).integers(0, len(iris.data), ROWS)
    return iris.data[chosen], [SPECIES[t] for t in iris.target[chosen]]


def test_flowers_from_the_iris_data_drift_on_no_feature(
    drawn: tuple[np.ndarray, list[str]],
) -> None:
    found = report(_logged(*drawn), NOW - timedelta(hours=2), NOW)

    assert found.rows == ROWS
    assert found.drift is False
    assert found.drifted_features == []
    for name, feature in found.features.items():
        assert not (feature.psi > PSI_THRESHOLD and feature.ks_pvalue < KS_PVALUE_THRESHOLD), name
        assert sum(feature.histogram.recent) == ROWS
        assert sum(feature.histogram.training) == 105  # the 70 % the champion was fitted on
    assert found.species is not None
    assert found.species.drift is False
    assert found.model_versions == ["3"]
    assert sum(sum(h.counts.values()) for h in found.species_by_hour) == ROWS
    assert len(found.species_by_hour) == 2  # 10:30-11:53 spans two hours


def test_petals_two_centimetres_longer_drift_on_petal_length_only(
    drawn: tuple[np.ndarray, list[str]],
) -> None:
    features, species = drawn
    longer = features.copy()
    longer[:, FEATURES.index("petal_length")] += 2.0

    found = report(_logged(longer, species), NOW - timedelta(hours=2), NOW)

    assert found.drift is True
    assert found.drifted_features == ["petal_length"]
    petal = found.features["petal_length"]
    assert petal.psi > PSI_THRESHOLD
    assert petal.ks_pvalue < KS_PVALUE_THRESHOLD
    assert found.thresholds.psi == PSI_THRESHOLD


def test_a_window_without_rows_has_no_verdict() -> None:
    found = report(SCHEMA.empty_table(), NOW - timedelta(hours=1), NOW)

    assert (found.rows, found.drift, found.features, found.species) == (0, None, {}, None)
