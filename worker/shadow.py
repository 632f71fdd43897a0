"""Shadow scoring: while a challenger is registered, a share of the rows the champion scores
online is scored by the challenger too, and the two are compared.

Clients only ever get the champion's answer, stored before the rows are handed over here.
The task only keeps the rows: one thread per process scores what has gathered with the
challenger every FLUSH_SECONDS, in one call, so the challenger (loading it, a slow model)
never holds a task, and a model's per-call cost (a random forest's is ~5 ms however few rows)
is paid once for hundreds of predictions. At most MAX_WAITING_ROWS wait: past that, rows are
left out of the comparison until the thread catches up. Comparisons still waiting when a
process ends (at most FLUSH_SECONDS of them) are not counted: these are statistics, not
jobs.

The challenger failing (missing, untrusted, raising) never fails a job: it is counted in
the pair's `failures` and logged at most once a minute; one that cannot even be loaded is
not asked again for LOAD_RETRY_SECONDS (each try is a registry call). Batches are not
shadowed (online traffic is what a challenger is tried on; a batch's rows are the caller's
own experiment).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import redis
from redis.client import Pipeline

from irisq import shadow
from irisq.schema import CHAMPION, SPECIES
from worker.inference import ModelCache, ScoredGroup
from worker.scored import ScoredRows

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
MAX_WAITING_ROWS = 100_000  # ~6 MB of features and answers
WARN_EVERY_SECONDS = 60.0
LOAD_RETRY_SECONDS = 30.0

Pair = tuple[str, str]  # (champion, challenger) versions


@dataclass
class _Waiting:
    """The champion's rows and answers waiting for one challenger."""

    features: list[np.ndarray] = field(default_factory=list)
    best: list[np.ndarray] = field(default_factory=list)
    probabilities: list[np.ndarray] = field(default_factory=list)
    rows: int = 0


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
        self._lock = threading.Lock()  # guards the waiting rows and the thread's start
        self._waiting: defaultdict[Pair, _Waiting] = defaultdict(_Waiting)
        self._waiting_rows = 0
        self._thread: threading.Thread | None = None  # started by the first rows (after fork)
        self._warned_at = float("-inf")
        self._unloadable: tuple[str, float] | None = None  # (version, not asked again until)

    def compare(self, group: ScoredGroup) -> None:
        """Keep this share of the rows that asked for the champion, and its answers, for the
        challenger, if there is one that is not the champion; scored within FLUSH_SECONDS."""
        if group.reference != CHAMPION:
            return  # a version asked for by name is that caller's choice, not live traffic
        _, champion, features, answers = group
        challenger = self.cache.challenger_version
        if challenger is None or challenger == champion or self.share <= 0 or not len(features):
            return
        if self._resting(challenger):
            return
        chosen = self._chosen(len(features))
        if not len(chosen):
            return
        with self._lock:
            if self._waiting_rows + len(chosen) > MAX_WAITING_ROWS:
                return  # the thread is behind: these rows go uncompared
            waiting = self._waiting[champion, challenger]
            waiting.features.append(features[chosen])
            waiting.best.append(answers.best[chosen])
            waiting.probabilities.append(answers.probabilities[chosen])
            waiting.rows += len(chosen)
            self._waiting_rows += len(chosen)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._flush_forever, name="irisq-shadow", daemon=True
                )
                self._thread.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            try:
                self.flush()
            except Exception:  # never let the thread die: the next round tries again
                logger.exception("shadow comparison round failed")

    def flush(self) -> None:
        """Score every waiting row with its challenger and add the comparisons (the
        thread's round; tests call it to compare at once)."""
        with self._lock:
            waiting, self._waiting = self._waiting, defaultdict(_Waiting)
            self._waiting_rows = 0
        for pair, rows in waiting.items():
            self._score(pair, rows)

    def _score(self, pair: Pair, rows: _Waiting) -> None:
        champion, challenger = pair
        try:
            _, estimator = self.cache.get(challenger)
        except Exception as exc:
            self._unloadable = (challenger, time.monotonic() + LOAD_RETRY_SECONDS)
            self._failed(pair, exc)
            return
        try:
            theirs = ScoredRows.of(estimator, np.concatenate(rows.features))
        except Exception as exc:  # whatever a challenger does, the answers stood
            self._failed(pair, exc)
            return
        mine_best, mine_probabilities = (
            np.concatenate(rows.best),
            np.concatenate(rows.probabilities),
        )
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

    def _failed(self, pair: Pair, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning(
                "the challenger, version %s, could not shadow-score (clients got the "
                "champion's answers; counted in its failures): %s: %s",
                pair[1],
                type(exc).__name__,
                str(exc)[:200],
            )
        self._write(lambda pipe: shadow.add_failure(pipe, *pair))

    def _write(self, add: Callable[[Pipeline], None]) -> None:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                add(pipe)
                pipe.execute()
        except redis.RedisError as exc:  # the figures are a report, never a job's fate
            logger.warning("could not record the shadow comparison: %s", exc)
