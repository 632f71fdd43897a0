"""What the models do, for `/metrics`: the challenger against the champion per pair of
versions (irisq.shadow), and the last drift report a worker computed (irisq.drift). Both
are read from Redis at scrape time, so any API instance exports every worker's figures."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from irisq import shadow
from irisq.drift import LATEST, DriftReport

Family = GaugeMetricFamily | CounterMetricFamily


def model_families(client: redis.Redis) -> Iterator[Family]:
    yield from _shadow(shadow.comparisons(client))
    yield from _drift(client.get(LATEST))


def _shadow(pairs: list[shadow.ShadowComparison]) -> Iterator[Family]:
    """The challenger against the champion, per pair of versions (irisq.shadow)."""
    labels = ["champion", "challenger"]
    rows = CounterMetricFamily(
        "irisq_shadow_rows", "Rows scored by both the champion and the challenger", labels=labels
    )
    agreement = GaugeMetricFamily(
        "irisq_shadow_agreement_ratio",
        "Share of shadow-scored rows where the challenger named the champion's species",
        labels=labels,
    )
    gap = GaugeMetricFamily(
        "irisq_shadow_mean_probability_gap",
        "Mean half summed absolute difference of the two versions' probabilities",
        labels=labels,
    )
    failures = CounterMetricFamily(
        "irisq_shadow_failures",
        "Times the challenger could not score the rows gathered for it (no job failed)",
        labels=labels,
    )
    for pair in pairs:
        versions = [pair.champion, pair.challenger]
        rows.add_metric(versions, pair.rows)
        failures.add_metric(versions, pair.failures)
        if pair.agreement is not None and pair.mean_probability_gap is not None:
            agreement.add_metric(versions, pair.agreement)
            gap.add_metric(versions, pair.mean_probability_gap)
    yield from (rows, agreement, gap, failures)


def _drift(latest: bytes | str | None) -> Iterator[Family]:
    """The last drift report a worker computed (irisq.drift), whatever window it was for."""
    if latest is None:
        return
    try:
        found = DriftReport.model_validate_json(latest)
    except ValueError:  # not a report of ours: nothing to export, never a failed scrape
        return
    rows = GaugeMetricFamily("irisq_drift_rows", "Logged rows in the last drift report's window")
    rows.add_metric([], found.rows)
    yield rows
    psi = GaugeMetricFamily(
        "irisq_drift_psi", "Population stability index, recent against training", labels=["feature"]
    )
    pvalue = GaugeMetricFamily(
        "irisq_drift_ks_pvalue",
        "Kolmogorov-Smirnov p-value, recent against training",
        labels=["feature"],
    )
    detected = GaugeMetricFamily(
        "irisq_drift_detected",
        "1 when the feature drifted (PSI and KS past their thresholds)",
        labels=["feature"],
    )
    for name, feature in found.features.items():
        psi.add_metric([name], feature.psi)
        pvalue.add_metric([name], feature.ks_pvalue)
        detected.add_metric([name], int(feature.drift))
    if found.species is not None:
        psi.add_metric(["species"], found.species.psi)
        detected.add_metric(["species"], int(found.species.drift))
    yield from (psi, pvalue, detected)
