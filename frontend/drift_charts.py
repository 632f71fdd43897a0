"""The Monitoring page's charts: a feature's distribution in training and in the window, and
the predicted species per hour, as Altair specs built from a drift report."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from frontend.charts import COLOURS
from irisq.schema import SPECIES

SOURCES = alt.Scale(domain=["training", "recent"], range=["#9e9e9e", "#e45756"])


def histogram(name: str, feature: dict[str, Any]) -> alt.Chart:
    """Shares of each bin (training and recent side by side): the two sizes differ."""
    bins = feature["histogram"]
    edges = bins["edges"]
    rows = []
    for source in ("training", "recent"):
        total = max(sum(bins[source]), 1)
        for i, count in enumerate(bins[source]):
            rows.append(
                {
                    "bin": f"{round(edges[i], 2):g}–{round(edges[i + 1], 2):g}",
                    "order": i,
                    "source": source,
                    "share": count / total,
                }
            )
    chart: alt.Chart = (
        alt.Chart(pd.DataFrame(rows), height=180, title=f"{name.replace('_', ' ')} (cm)")
        .mark_bar()
        .encode(
            x=alt.X("bin:N", sort=alt.SortField("order"), title=None),
            xOffset="source:N",
            y=alt.Y("share:Q", axis=alt.Axis(format="%"), title=None),
            color=alt.Color("source:N", scale=SOURCES, title=None),
            tooltip=["bin", "source", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    return chart


def species_by_hour(hours: list[dict[str, Any]]) -> alt.Chart:
    rows = [
        {"hour": pd.Timestamp(h["hour"]).tz_convert(None), "species": s, "rows": h["counts"][s]}
        for h in hours
        for s in SPECIES
    ]
    chart: alt.Chart = (
        alt.Chart(pd.DataFrame(rows), height=200)
        .mark_bar()
        .encode(
            # One wide bar an hour (a time axis draws an hour's bar a few pixels wide).
            x=alt.X("yearmonthdatehours(hour):O", title="hour (UTC)"),
            y=alt.Y("rows:Q", stack=True, title="rows predicted"),
            color=alt.Color("species:N", scale=COLOURS),
            tooltip=[alt.Tooltip("hour:T", format="%Y-%m-%d %H:00"), "species", "rows"],
        )
    )
    return chart
