"""Drift: how the flowers sent for prediction in a window compare with the ones the champion
was trained on. The report a train worker computes (worker.drift) from the prediction log,
the API answers (`GET /v1/monitoring/drift`), `/metrics` exports and the Monitoring page
draws. Computing needs numpy and scipy, so it never happens in the API process: the API
asks for it with the DRIFT_TASK and reads the report the worker leaves in Redis.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from pydantic import BaseModel, Field

CACHE_PREFIX: Final = "irisq:drift:"
LATEST: Final = "irisq:drift-latest"  # the last report computed, for /metrics
# Held (with the window's cache key) while a train worker computes a report: one drift task
# at a time, whoever asks and for whatever windows, so asking never floods the train queue.
COMPUTING: Final = "irisq:drift-computing"
CACHE_SECONDS: Final = 60
# A feature drifted when both say so: PSI (how far the binned shares moved) past 0.2, the
# usual "significant shift", and the two-sample Kolmogorov-Smirnov test's p-value under 0.01.
PSI_THRESHOLD: Final = 0.2
KS_PVALUE_THRESHOLD: Final = 0.01


def as_utc(moment: datetime) -> datetime:
    """A window's end in UTC: a time given without a zone is taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cache_key(since: datetime, until: datetime) -> str:
    return f"{CACHE_PREFIX}{int(since.timestamp())}:{int(until.timestamp())}"


class Histogram(BaseModel):
    """Counts of a feature's values in bins with these `edges` (one more than the counts)."""

    edges: list[float]
    training: list[int]
    recent: list[int]


class FeatureDrift(BaseModel):
    psi: float = Field(description="Population stability index of recent against training.")
    ks_statistic: float
    ks_pvalue: float
    drift: bool = Field(description="PSI and the KS test both past their thresholds.")
    histogram: Histogram


class SpeciesMix(BaseModel):
    """Shares of each species: the training labels, and what was predicted in the window."""

    training: dict[str, float]
    recent: dict[str, float]
    psi: float
    drift: bool


class SpeciesCount(BaseModel):
    """Rows predicted as each species in one hour of the window."""

    hour: datetime
    counts: dict[str, int]


class Thresholds(BaseModel):
    psi: float = PSI_THRESHOLD
    ks_pvalue: float = KS_PVALUE_THRESHOLD


class DriftReport(BaseModel):
    """The rows logged in [since, until) against the training data. With no rows: `rows`
    0 and no verdict (`drift` null)."""

    since: datetime
    until: datetime
    rows: int
    model_versions: list[str] = Field(description="Versions that answered in the window.")
    drift: bool | None = Field(description="Any feature drifted (null: no rows to judge).")
    drifted_features: list[str]
    features: dict[str, FeatureDrift]
    species: SpeciesMix | None
    species_by_hour: list[SpeciesCount]
    thresholds: Thresholds = Field(default_factory=Thresholds)
    computed_at: datetime
