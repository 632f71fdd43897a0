"""Scoring rows with a registered model, loaded once per process and swapped when it moves."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from irisq.schema import CHAMPION, is_version
from worker.registry import ModelNotFoundError, Registry, RegistryUnavailableError

logger = logging.getLogger(__name__)

# Loaded estimators kept per process: the champion, the one before it (jobs in flight during
# a swap), and one pinned version. An Iris pipeline is a few KB, so this bounds nothing big.
MAX_LOADED_MODELS = 3


class ModelCache:
    """Resolves model references to versions and keeps the loaded estimators.

    The champion alias is re-resolved at most every `refresh_seconds`: resolving costs one
    registry round trip, so doing it per job would put MLflow on the hot path. While the
    registry is unreachable, the last champion this process (or machine) resolved goes on
    serving, and results say so (`model_source`).
    """

    def __init__(
        self,
        registry: Registry,
        refresh_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._refresh = refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._champion: str | None = None
        self._champion_checked_at = float("-inf")
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self.registry_reachable = True

    def champion_version(self) -> str:
        """The champion's version, from the registry when the last look is stale."""
        with self._lock:
            # While the registry is down, ask it again only now and then: each try costs
            # MLflow's connection retries (about a second), paid by the job that asks.
            refresh = self._refresh if self.registry_reachable else max(self._refresh, 15.0)
            if self._champion is None or self._clock() - self._champion_checked_at >= refresh:
                self._champion = self._resolve_champion()
                self._champion_checked_at = self._clock()
            if self._champion is None:
                raise ModelNotFoundError(
                    "no champion model is registered yet; train one with POST /v1/training"
                )
            return self._champion

    def _resolve_champion(self) -> str | None:
        try:
            version = self._registry.champion_version()
        except RegistryUnavailableError as exc:
            fallback = self._champion or self._registry.last_known_champion()
            if fallback is None:
                raise
            if self.registry_reachable:
                logger.warning("%s; serving the last known champion, version %s", exc, fallback)
            self.registry_reachable = False
            return fallback
        if not self.registry_reachable:
            logger.info("the registry is reachable again; champion is version %s", version)
        self.registry_reachable = True
        return version

    @property
    def source(self) -> str:
        """Where the champion's identity came from: `registry`, or `last_known` when down."""
        return "registry" if self.registry_reachable else "last_known"

    def get(self, reference: str = CHAMPION) -> tuple[str, Any]:
        """(version, estimator) for `"champion"` or a version number."""
        if is_version(reference):
            version = reference
        elif reference == CHAMPION:
            version = self.champion_version()
        else:
            raise ModelNotFoundError(f"unknown model reference {reference!r}")
        with self._lock:
            if version in self._loaded:
                self._loaded.move_to_end(version)
                return version, self._loaded[version]
        if reference != CHAMPION and not self._registry.has_copy(version):
            self._registry.require_version(version)
        estimator = self._registry.load(version)
        with self._lock:
            self._loaded[version] = estimator
            while len(self._loaded) > MAX_LOADED_MODELS:
                self._loaded.popitem(last=False)
        return version, estimator


def score(estimator: Any, rows: Sequence[Sequence[float]]) -> list[dict[str, Any]]:
    """Predict every row in one `predict_proba` call (per-call overhead dominates small jobs)."""
    features = np.asarray(rows, dtype=np.float64)
    probabilities = estimator.predict_proba(features)
    classes = [str(c) for c in estimator.classes_]
    best = probabilities.argmax(axis=1)
    return [
        {
            "species": classes[best[i]],
            "probabilities": {c: round(float(p), 6) for c, p in zip(classes, row, strict=True)},
        }
        for i, row in enumerate(probabilities)
    ]


def predict(cache: ModelCache, rows: Sequence[Sequence[float]], reference: str) -> dict[str, Any]:
    """The result of a prediction job: the version that scored it and one entry per row."""
    version, estimator = cache.get(reference)
    return {
        "model_version": version,
        "model_source": cache.source if reference == CHAMPION else "registry",
        "predictions": score(estimator, rows),
    }
