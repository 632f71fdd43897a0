"""The Monitoring page against a faked API: the verdict, the figures, the charts, and what a
window without rows or an API that cannot compute says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import respx
from streamlit.testing.v1 import AppTest

from irisq.drift import DriftReport, FeatureDrift, Histogram, SpeciesCount, SpeciesMix
from irisq.schema import FEATURES, SPECIES
from tests.frontend.conftest import APP

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _report(rows: int, drifted: list[str]) -> dict[str, Any]:
    def feature(name: str) -> FeatureDrift:
        moved = name in drifted
        return FeatureDrift(
            psi=5.1 if moved else 0.03,
            ks_statistic=0.9 if moved else 0.02,
            ks_pvalue=1e-25 if moved else 0.99,
            drift=moved,
            histogram=Histogram(edges=[1.0, 2.0, 3.0], training=[50, 55], recent=[10, 90]),
        )

    report = DriftReport(
        since=NOW - timedelta(hours=24),
        until=NOW,
        rows=rows,
        model_versions=["3"] if rows else [],
        drift=bool(drifted) if rows else None,
        drifted_features=drifted,
        features={name: feature(name) for name in FEATURES} if rows else {},
        species=SpeciesMix(
            training={s: 1 / 3 for s in SPECIES},
            recent={"setosa": 0.2, "versicolor": 0.3, "virginica": 0.5},
            psi=0.25,
            drift=True,
        )
        if rows
        else None,
        species_by_hour=[SpeciesCount(hour=NOW, counts={s: 10 for s in SPECIES})] if rows else [],
        computed_at=NOW,
    )
    return report.model_dump(mode="json")


def _page() -> AppTest:
    page = AppTest.from_file(APP, default_timeout=30)
    page.run()
    page.switch_page("views/monitoring.py").run()
    return page


def test_a_drifted_feature_is_named_with_its_figures(api: respx.MockRouter) -> None:
    asked = api.get("/v1/monitoring/drift").respond(200, json=_report(5_000, ["petal_length"]))

    page = _page()

    assert not page.exception
    assert "**Drift** on petal length, over 5,000 predictions." in page.error[0].value
    table = page.dataframe[0].value
    assert table["drift"].tolist() == ["no", "no", "yes", "no"]
    assert len(page.get("vega_lite_chart")) == 5  # four histograms, species per hour
    assert "the mix drifted" in page.markdown[-1].value
    window = asked.calls.last.request.url.params
    since, until = (datetime.fromisoformat(window[k]) for k in ("since", "until"))
    assert until - since == timedelta(hours=24)


def test_a_window_without_rows_says_so(api: respx.MockRouter) -> None:
    api.get("/v1/monitoring/drift").respond(200, json=_report(0, []))

    page = _page()

    assert not page.exception
    assert "No prediction was logged in this window" in page.info[0].value


def test_no_train_worker_is_shown_as_the_apis_message(api: respx.MockRouter) -> None:
    api.get("/v1/monitoring/drift").respond(
        503, json={"detail": "no train worker is running to compute drift"}
    )

    page = _page()

    assert not page.exception
    assert "no train worker is running" in page.error[0].value
