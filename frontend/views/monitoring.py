"""Drift: how the flowers sent for prediction compare with the ones the champion was trained
on, per feature and for the predicted species, over a window the person picks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from frontend import client, drift_charts

WINDOWS = {
    "Last hour": timedelta(hours=1),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
}

st.title("Monitoring")
st.write(
    "Online predictions are logged. Here the flowers of a recent window are compared "
    "with the 105 flowers every version is trained on: a feature **drifts** when both its "
    "population stability index (PSI) and a Kolmogorov-Smirnov test say its distribution moved."
)
chosen = st.segmented_control(
    "Window", list(WINDOWS), default="Last 24 hours", key="monitoring.window"
)
until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
since = until - WINDOWS[chosen or "Last 24 hours"]
try:
    with st.spinner("Computing drift on a train worker…"):
        report = client.drift(since, until)
except client.ApiError as exc:
    st.error(str(exc))
    st.stop()

if not report["rows"]:
    st.info("No prediction was logged in this window, so there is nothing to judge yet.")
    st.stop()
thresholds = report["thresholds"]
if report["drift"]:
    drifted = ", ".join(name.replace("_", " ") for name in report["drifted_features"])
    st.error(f"**Drift** on {drifted}, over {report['rows']:,} predictions.")
else:
    st.success(f"**No drift** over {report['rows']:,} predictions.")
st.caption(
    f"Thresholds: PSI above {thresholds['psi']} and KS p-value below {thresholds['ks_pvalue']}. "
    f"Model versions that answered: {', '.join(report['model_versions'])}."
)
st.dataframe(
    pd.DataFrame(
        [
            {
                "feature": name.replace("_", " "),
                "PSI": f["psi"],
                "KS statistic": f["ks_statistic"],
                "KS p-value": f["ks_pvalue"],
                "drift": "yes" if f["drift"] else "no",
            }
            for name, f in report["features"].items()
        ]
    ),
    hide_index=True,
    column_config={
        "PSI": st.column_config.NumberColumn(format="%.3f"),
        "KS statistic": st.column_config.NumberColumn(format="%.3f"),
        "KS p-value": st.column_config.NumberColumn(format="%.3g"),
    },
)
st.subheader("Training against this window")
columns = st.columns(2)
for i, (name, feature) in enumerate(report["features"].items()):
    columns[i % 2].altair_chart(drift_charts.histogram(name, feature), width="stretch")
species = report["species"]
st.subheader("Predicted species")
st.write(
    "Share of each species: "
    + ", ".join(
        f"{s} {species['recent'][s]:.0%} (training {species['training'][s]:.0%})"
        for s in species["recent"]
    )
    + (f" — **the mix drifted** (PSI {species['psi']:.2f})." if species["drift"] else ".")
)
st.altair_chart(drift_charts.species_by_hour(report["species_by_hour"]), width="stretch")
