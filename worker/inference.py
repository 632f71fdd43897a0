"""Scoring rows with a registered model, loaded once per process and swapped when it moves."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from irisq.schema import CHAMPION, FEATURES, is_version
from worker.registry import ModelNotFoundError, Registry, RegistryUnavailableError
from worker.scored import ScoredRows

logger = logging.getLogger(__name__)

# Loaded estimators kept per process: the champion, the one before it (jobs in flight during
# a swap), the challenger, and one pinned version. An Iris pipeline is a few KB (a forest a
# few MB), so this bounds nothing big.
MAX_LOADED_MODELS = 4
# How long "the registry has no version N" is believed before asking again, and how many
# such answers are kept (a caller may ask for any number).
MISSING_SECONDS = 30.0
MAX_REMEMBERED_MISSING = 1000
# A process that has not looked at the registry for this long (it was idle) waits a little
# for the look its next job starts, so that job names the champion of now, not of minutes
# ago; a hung registry costs that one job at most FRESH_WAIT_SECONDS.
LONG_STALE_SECONDS = 10.0
FRESH_WAIT_SECONDS = 0.5
# While the registry cannot be reached, it is looked at this often (in the background, one
# look at a time): each failed look costs a connection attempt (logged, by worker.registry).
# Not much longer: until it answers, results say `last_known` and no challenger is known
# (`make run` starts MLflow after the workers, so this is their first seconds).
UNREACHABLE_LOOK_SECONDS = 5.0
# How long a version that could not be loaded for the registry's absence is refused without
# trying again (unless a look finds the registry back first).
UNREACHABLE_MISSING_SECONDS = 15.0


class ModelCache:
    """Resolves model references to versions and keeps the loaded estimators.

    The champion alias is re-resolved at most every `refresh_seconds`, and never by a job
    waiting on it: once a champion is known, a stale one is refreshed in the background
    (`background=True`, as workers run it) while jobs go on with it, so a hung registry
    costs them nothing. Only the very first resolution is waited for. While the registry is
    unreachable, the last champion this process (or machine) resolved goes on serving, and
    results say so (`model_source`). Versions the registry says do not exist are remembered
    for a while, as is its being unreachable (until it answers again), so a stream of such
    requests fails fast. Both are forgotten when a look finds the registered model made
    again, whose version numbers start anew; a version asked for by number sets off the same
    looks as the champion does, so callers pinned to one notice too.
    """

    def __init__(
        self,
        registry: Registry,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        background: bool = False,
    ) -> None:
        self._registry = registry
        self._refresh = refresh_seconds
        self._clock = clock
        self._background = background
        self._lock = threading.Lock()  # held for dictionary updates only, never for a call
        self._refreshing = threading.Lock()
        self._champion: str | None = None
        # Resolved with the champion (one registry call reads both aliases); kept as it was
        # while the registry is away.
        self._challenger: str | None = None
        self._champion_checked_at = float("-inf")
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self._missing: dict[str, tuple[float, Exception]] = {}  # version → (until, error)
        # When the registered model those versions belong to was made (registry.Aliases).
        self._model_created: int | None = None
        self._generation = 0  # bumped when it changes: a load begun before is not kept
        self.registry_reachable = True

    def champion_version(self) -> str:
        """The champion's version; refreshed when the last look is stale."""
        with self._lock:
            champion = self._champion
        if champion is None:
            self.refresh_champion(wait=True)
        else:
            self._look_if_due(wait=True)
        with self._lock:
            if self._champion is None:
                raise ModelNotFoundError(_no_champion(self._registry.settings.bootstrap_champion))
            return self._champion

    def _look_if_due(self, wait: bool) -> None:
        """Ask the registry again if the last look is stale: in the background when workers
        run this (waiting briefly after a quiet spell), else here; `wait`: its failure is
        the caller's (else it is logged)."""
        with self._lock:
            refresh = self._refresh
            if not self.registry_reachable:
                refresh = max(refresh, UNREACHABLE_LOOK_SECONDS)
            age = self._clock() - self._champion_checked_at
        if age < refresh:
            return
        if self._background:
            looking = self._refresh_in_background()
            if looking is not None and age >= max(LONG_STALE_SECONDS, refresh):
                looking.join(FRESH_WAIT_SECONDS)
        else:
            self.refresh_champion(wait=wait)

    def _refresh_in_background(self) -> threading.Thread | None:
        """The thread now asking the registry, or None when one already is."""
        if self._refreshing.locked():
            return None
        thread = threading.Thread(target=self.refresh_champion, daemon=True)
        thread.start()
        return thread

    def refresh_champion(self, wait: bool = False) -> None:
        """Ask the registry for the champion (one asker at a time; others go on)."""
        if not self._refreshing.acquire(blocking=wait):
            return
        try:
            version = self._resolve_champion()
        except Exception as exc:
            with self._lock:  # not again at once: the next look waits its interval
                self._champion_checked_at = self._clock()
            if wait:
                raise
            logger.warning("the champion could not be refreshed: %s", exc)
            return
        finally:
            self._refreshing.release()
        with self._lock:
            self._champion = version
            self._champion_checked_at = self._clock()

    @property
    def challenger_version(self) -> str | None:
        """The challenger as last resolved with the champion (None: there is none)."""
        with self._lock:
            return self._challenger

    def _resolve_champion(self) -> str | None:
        try:
            version, challenger, created = self._registry.aliased()
        except RegistryUnavailableError as exc:
            fallback = self._champion or self._registry.last_known_champion()
            if fallback is None:
                raise
            if self.registry_reachable:
                logger.warning("%s; serving the last known champion, version %s", exc, fallback)
            self.registry_reachable = False
            return fallback
        if not self.registry_reachable:
            champion = f"version {version}" if version else "none registered yet"
            logger.info("the registry is reachable again; champion: %s", champion)
        self.registry_reachable = True
        with self._lock:  # the registry answered: "unreachable" holds for no version, and the
            # champion exists (it may be a version that did not when it was last asked for)
            for remembered, (_, error) in list(self._missing.items()):
                if remembered == version or isinstance(error, RegistryUnavailableError):
                    del self._missing[remembered]
            self._challenger = challenger
            self._follow_the_model(created)
        return version

    def _follow_the_model(self, created: int | None) -> None:
        """Drop what was loaded or found missing when the registered model is not the one it
        came from: made again (`make clean-var` under running workers, or deleted and
        registered anew), its version 1 is another model. Called with the lock held."""
        if created is None:
            return
        made_again = self._model_created is not None and created != self._model_created
        # Loaded from local copies while the registry could not be reached (a process started
        # during an outage): of which registered model, only the registry can say.
        unchecked = self._model_created is None and bool(self._loaded)
        self._model_created = created
        if not (made_again or unchecked):
            return
        logger.warning(
            "the registered model was made again, or is seen for the first time after local "
            "copies were loaded: the %d versions held here are loaded again",
            len(self._loaded),
        )
        self._loaded.clear()
        self._missing.clear()
        self._generation += 1

    @property
    def source(self) -> str:
        """Where the champion's identity came from: `registry`, or `last_known` when down."""
        return "registry" if self.registry_reachable else "last_known"

    def get(self, reference: str = CHAMPION) -> tuple[str, Any]:
        """(version, estimator) for `"champion"` or a version number."""
        if is_version(reference):
            # A version asked for by number looks at the registry as often as the champion
            # does: only a look notices a registered model made again, whose version N is
            # another model. It never fails the job (the load meets the registry anyway).
            self._look_if_due(wait=False)
            return self._version(reference)
        if reference != CHAMPION:
            raise ModelNotFoundError(f"unknown model reference {reference!r}")
        version = self.champion_version()
        try:
            return self._version(version)
        except ModelNotFoundError:
            # The registry answered that the champion this process knows does not exist: it
            # was the last known one, from a registry since replaced (`make clean-var`, whose
            # numbers start again) or a version deleted since (MLflow deletes its aliases
            # with it). Ask which is the champion now, once; another thread may have already.
            self._forget_champion(version)
            return self._version(self.champion_version())

    def _forget_champion(self, version: str) -> None:
        """Drop `version` as the champion, so the next look waits for the registry (unless a
        look has replaced it meanwhile)."""
        with self._lock:
            if self._champion == version:
                self._champion = None

    def _version(self, version: str) -> tuple[str, Any]:
        with self._lock:
            if version in self._loaded:
                self._loaded.move_to_end(version)
                return version, self._loaded[version]
            remembered = self._missing.get(version)
            generation = self._generation
        if remembered is not None and remembered[0] > self._clock():
            if isinstance(remembered[1], RegistryUnavailableError) and self._background:
                self._refresh_in_background()  # a look at the registry: back, it clears this
            raise remembered[1]
        try:
            estimator = self._registry.load(version)
        except (ModelNotFoundError, RegistryUnavailableError) as exc:
            forget_after = (
                MISSING_SECONDS
                if isinstance(exc, ModelNotFoundError)
                else UNREACHABLE_MISSING_SECONDS
            )
            with self._lock:
                if generation != self._generation:
                    raise
                self._missing[version] = (self._clock() + forget_after, exc)
                while len(self._missing) > MAX_REMEMBERED_MISSING:
                    self._missing.pop(next(iter(self._missing)))
            raise
        with self._lock:
            if generation != self._generation:  # of the model made before: serves only this job
                return version, estimator
            self._loaded[version] = estimator
            while len(self._loaded) > MAX_LOADED_MODELS:
                self._loaded.popitem(last=False)
        return version, estimator


def _no_champion(bootstrapped: bool) -> str:
    first = (
        "a new stack trains its first one as it starts (GET /readyz says ready once it is "
        "there), or an admin key trains one with POST /v1/training"
        if bootstrapped
        else "an admin key trains one with POST /v1/training"
    )
    return f"no champion model is registered yet: {first}"


class ScoredGroup(NamedTuple):
    """Rows one model call scored, and its answers: what the prediction log keeps and shadow
    scoring compares with (`reference`: "champion" or the version asked for)."""

    reference: str
    version: str
    features: np.ndarray
    answers: ScoredRows


@dataclass(frozen=True)
class PredictedJob:
    """A prediction job's result: the version that scored its rows, and their predictions."""

    model_version: str
    model_source: str
    rows: ScoredRows

    def result_json(self) -> str:
        return self.rows.result_json(self.model_version, self.model_source)


def predict_jobs(
    cache: ModelCache,
    reference: str,
    rows_per_job: Sequence[Sequence[Sequence[float]]],
    on_scored: Callable[[ScoredGroup], None] | None = None,
) -> list[PredictedJob]:
    """The results of prediction jobs that asked for the same model, in order: each names
    the version that scored it and has one prediction per row. All the jobs' rows go in
    one `predict_proba` call (per-call overhead dominates small jobs). The rows and the
    answers are then handed to `on_scored` (the prediction log, shadow scoring)."""
    version, estimator = cache.get(reference)
    source = cache.source if reference == CHAMPION else "registry"
    features = np.asarray([row for rows in rows_per_job for row in rows], dtype=np.float64)
    if features.ndim != 2 or features.shape[1] != len(FEATURES):  # the API sends 4 a row
        raise ValueError(f"rows of {features.shape[1:]} values, not {len(FEATURES)}")
    scored = ScoredRows.of(estimator, features)
    if on_scored is not None:
        on_scored(ScoredGroup(reference, version, features, scored))
    results, start = [], 0
    for rows in rows_per_job:
        results.append(PredictedJob(version, source, scored.rows(start, start + len(rows))))
        start += len(rows)
    return results
