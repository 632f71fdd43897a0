"""Predictions of many rows kept as arrays, and a prediction job's result JSON written
straight from them.

A 100,000-row `/invocations` body is ten 10,000-row jobs. Building a dict per row, validating
them into `PredictionResult` and dumping that model again took three quarters of a worker's
time on such a body (0.6 s of CPU for 100,000 rows, more than `mlflow models serve` takes to
answer it); the same JSON formatted from the arrays takes a fifth of that. It reads as
`PredictionResult.model_dump_json()` would write the same values, field for field (a float
may be spelled differently: Python's `1e-06` for pydantic's `1e-6`); tests/worker/
test_scored.py holds the two side by side. The model stays the contract: the API and
clients validate what is written here against it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from irisq.schema import SPECIES
from worker.errors import ExpectedJobError

# Each row's text up to its first probability, by species index: the rest is three numbers.
_ROW_START = [f'{{"species":"{name}","probabilities":{{"{SPECIES[0]}":' for name in SPECIES]


class UnusableModelError(ExpectedJobError):
    """The model predicts something other than the three species, or probabilities that are
    not numbers: no answer is better than a wrong one."""

    error_type = "model_unusable"


def species_columns(estimator: Any) -> list[int]:
    """The column of `predict_proba` that holds each of SPECIES, in SPECIES order."""
    classes = [str(c) for c in getattr(estimator, "classes_", [])]
    if sorted(classes) != sorted(SPECIES):
        shown = ", ".join(name[:40] for name in classes[:5])
        raise UnusableModelError(f"the model predicts [{shown}], not the species {SPECIES}")
    return [classes.index(species) for species in SPECIES]


@dataclass(frozen=True)
class ScoredRows:
    """Each row's species (an index into SPECIES) and its probabilities, one column per
    species in SPECIES order, rounded to 6 places as a batch's result file rounds them."""

    best: np.ndarray
    probabilities: np.ndarray

    @classmethod
    def of(cls, estimator: Any, features: np.ndarray) -> ScoredRows:
        """Score a (rows, 4) matrix in one `predict_proba` call."""
        probabilities = np.asarray(estimator.predict_proba(features), dtype=np.float64)
        if probabilities.shape != (len(features), len(SPECIES)):
            raise UnusableModelError(
                f"the model answered {probabilities.shape[:2]} probabilities for "
                f"{len(features)} rows of {len(SPECIES)} species"
            )
        probabilities = probabilities[:, species_columns(estimator)]
        if not np.isfinite(probabilities).all():
            raise UnusableModelError("the model answered probabilities that are not numbers")
        return cls(probabilities.argmax(axis=1), np.round(probabilities, 6))

    def __len__(self) -> int:
        return len(self.best)

    def rows(self, start: int, stop: int) -> ScoredRows:
        return ScoredRows(self.best[start:stop], self.probabilities[start:stop])

    def species_counts(self) -> dict[str, int]:
        """Rows predicted as each species (those predicted at least once)."""
        counts = np.bincount(self.best, minlength=len(SPECIES)).tolist()
        return {name: count for name, count in zip(SPECIES, counts, strict=True) if count}

    def result_json(self, model_version: str, model_source: str) -> str:
        """The job's `PredictionResult` as JSON. A float's repr is the shortest text that
        reads back as the same float (each is finite: checked when scored)."""
        second, third = SPECIES[1], SPECIES[2]
        starts = [_ROW_START[b] for b in self.best.tolist()]
        predictions = ",".join(
            [
                f'{start}{a!r},"{second}":{b!r},"{third}":{c!r}}}}}'
                for start, (a, b, c) in zip(starts, self.probabilities.tolist(), strict=True)
            ]
        )
        return (
            f'{{"kind":"prediction","model_version":{json.dumps(model_version)},'
            f'"model_source":{json.dumps(model_source)},"predictions":[{predictions}]}}'
        )
