"""Shadow scoring: while a challenger is registered, a share of the rows the champion scores
online is scored by the challenger too, in the same task, and the two are compared.

Clients only ever get the champion's answer, stored before the challenger runs (it adds no
latency to an answer); the challenger failing (missing, untrusted, raising) never fails a
job: it is counted in the pair's `failures` and logged at most once a minute. One that
cannot even be loaded is not asked again for LOAD_RETRY_SECONDS (each try is a registry
call). Batches are not shadowed (online traffic
is what a challenger is tried on; a batch's rows are the caller's own experiment).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import redis
from redis.client import Pipeline

from irisq import shadow
from irisq.schema import SPECIES
from worker.inference import ChampionRows, ModelCache
from worker.scored import ScoredRows

logger = logging.getLogger(__name__)

WARN_EVERY_SECONDS = 60.0
LOAD_RETRY_SECONDS = 30.0


class ShadowScorer:
    def __init__(
        self,
        cache: ModelCache,
        client: redis.Redis,
        share: float,
        generator: np.random.Generator | None = None,
    ) -> None:
        self.cache = cache
        self.client = client
        self.share = share
        self._generator = generator or np.random.default_rng()
        self._warned_at = float("-inf")
        self._unloadable: tuple[str, float] | None = None  # (version, not asked again until)

    def compare(self, rows: ChampionRows) -> None:
        """Score this share of the champion's rows with the challenger, if there is one that
        is not the champion, and add how it compares with the champion's answers."""
        champion, features, answers = rows
        challenger = self.cache.challenger_version
        if challenger is None or challenger == champion or self.share <= 0 or not len(features):
            return
        if self._resting(challenger):
            return
        chosen = self._chosen(len(features))
        if not len(chosen):
            return
        try:
            _, estimator = self.cache.get(challenger)
        except Exception as exc:
            self._unloadable = (challenger, time.monotonic() + LOAD_RETRY_SECONDS)
            self._failed(champion, challenger, exc)
            return
        try:
            theirs = ScoredRows.of(estimator, features[chosen])
        except Exception as exc:  # whatever a challenger does, the answers stand
            self._failed(champion, challenger, exc)
            return
        mine_best, mine_probabilities = answers.best[chosen], answers.probabilities[chosen]
        confusion = np.zeros((len(SPECIES), len(SPECIES)), dtype=np.int64)
        np.add.at(confusion, (mine_best, theirs.best), 1)
        gap = float(np.abs(mine_probabilities - theirs.probabilities).sum()) / 2
        self._write(lambda pipe: shadow.add(pipe, champion, challenger, confusion.tolist(), gap))

    def _resting(self, challenger: str) -> bool:
        """Whether `challenger` failed to load a moment ago (not asked again yet)."""
        unloadable = self._unloadable
        return (
            unloadable is not None
            and unloadable[0] == challenger
            and (time.monotonic() < unloadable[1])
        )

    def _chosen(self, rows: int) -> np.ndarray:
        if self.share >= 1:
            return np.arange(rows)
        return np.flatnonzero(self._generator.random(rows) < self.share)

    def _failed(self, champion: str, challenger: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning(
                "the challenger, version %s, could not shadow-score (clients got the "
                "champion's answers; counted in its failures): %s: %s",
                challenger,
                type(exc).__name__,
                str(exc)[:200],
            )
        self._write(lambda pipe: shadow.add_failure(pipe, champion, challenger))

    def _write(self, add: Callable[[Pipeline], None]) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                add(pipe)
                pipe.execute()
        except redis.RedisError as exc:  # the figures are a report, never a job's fate
            logger.warning("could not record the shadow comparison: %s", exc)
