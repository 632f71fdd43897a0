"""Shadow scoring (worker.shadow) on a real SQLite registry and a real Redis: a challenger
trained as one, compared with the champion on the rows the champion scored."""

from __future__ import annotations

from collections.abc import Iterator

import mlflow
import numpy as np
import pytest
import redis

from irisq import shadow
from irisq.schema import SPECIES
from irisq.settings import Settings
from tests.worker.conftest import redis_database
from worker.inference import ModelCache, predict_jobs
from worker.registry import Registry
from worker.shadow import ShadowScorer
from worker.training import CHALLENGER_REASON, train_and_register

FLOWERS = np.round(
    np.random.default_rng(5).uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], (600, 4)), 1
)


@pytest.fixture(scope="module")
def versions(sqlite_settings: Settings) -> tuple[str, str]:
    """(champion, challenger): the challenger trained as one, never gated."""
    champion = train_and_register("logistic_regression", {}, sqlite_settings).model_version
    trained = train_and_register(
        "decision_tree", {"max_depth": 1}, sqlite_settings, as_challenger=True
    )
    assert (trained.promoted, trained.as_challenger) == (False, True)
    assert trained.reason == CHALLENGER_REASON
    registry = Registry(sqlite_settings)
    assert registry.aliased()[:2] == (champion, trained.model_version)  # champion unmoved
    return champion, trained.model_version


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis_database(redis_url, 11) as client:
        yield client


def _scored(cache: ModelCache, scorer: ShadowScorer, rows: np.ndarray) -> None:
    predict_jobs(cache, "champion", [rows.tolist()], scorer.compare)


def test_the_challenger_is_compared_on_the_champions_rows(
    sqlite_settings: Settings, versions: tuple[str, str], client: redis.Redis
) -> None:
    champion, challenger = versions
    cache = ModelCache(Registry(sqlite_settings), refresh_seconds=60)
    scorer = ShadowScorer(cache, client, share=1.0)

    for start in range(0, len(FLOWERS), 100):  # six tasks' rows, compared in one call
        _scored(cache, scorer, FLOWERS[start : start + 100])
    predict_jobs(cache, champion, [FLOWERS.tolist()], scorer.compare)  # pinned: not shadowed
    scorer.flush()

    figures = shadow.comparison(client, champion, challenger)
    mine, theirs = cache.get(champion)[1], cache.get(challenger)[1]
    ours, others = mine.predict(FLOWERS), theirs.predict(FLOWERS)
    assert figures.rows == len(FLOWERS)
    assert figures.agreement is not None
    assert figures.agreement == pytest.approx(float(np.mean(ours == others)), abs=1e-6)
    assert 0 < figures.agreement < 1  # a one-split tree names two species at most
    for a in SPECIES:
        for b in SPECIES:
            assert figures.confusion[a][b] == int(((ours == a) & (others == b)).sum())
    gap = np.abs(
        np.round(mine.predict_proba(FLOWERS), 6) - np.round(theirs.predict_proba(FLOWERS), 6)
    )
    assert figures.mean_probability_gap == pytest.approx(gap.sum() / 2 / len(FLOWERS), abs=1e-5)
    assert figures.failures == 0
    assert shadow.comparisons(client) == [figures]


def test_a_share_of_the_rows_is_compared(
    sqlite_settings: Settings, versions: tuple[str, str], client: redis.Redis
) -> None:
    cache = ModelCache(Registry(sqlite_settings), refresh_seconds=60)
    scorer = ShadowScorer(cache, client, share=0.25, generator=np.random.default_rng(1))

    _scored(cache, scorer, FLOWERS)
    scorer.flush()

    rows = shadow.comparison(client, *versions).rows
    assert 100 < rows < 200  # ~150 of 600, as the generator drew them


def test_a_challenger_that_cannot_load_fails_no_answer_and_rests(
    sqlite_settings: Settings, versions: tuple[str, str], client: redis.Redis
) -> None:
    """A version registered from the champion's run by hand carries no signature of ours:
    workers refuse to load it, so every try to compare fails."""
    champion, challenger = versions
    registry = Registry(sqlite_settings)
    run_id = registry.client.get_model_version(registry.name, champion).run_id
    unsigned = str(mlflow.register_model(f"runs:/{run_id}/model", registry.name).version)
    registry.make_challenger(unsigned)
    try:
        cache = ModelCache(registry, refresh_seconds=60)
        assert cache.champion_version() == champion
        assert cache.challenger_version == unsigned
        scorer = ShadowScorer(cache, client, share=1.0)

        answers = predict_jobs(cache, "champion", [FLOWERS[:10].tolist()], scorer.compare)
        scorer.flush()
        _scored(cache, scorer, FLOWERS[10:20])  # resting after the failure: not even kept
        scorer.flush()
    finally:
        registry.make_challenger(challenger)

    assert answers[0].model_version == champion
    figures = shadow.comparison(client, champion, unsigned)
    assert (figures.rows, figures.failures) == (0, 1)
