"""The page's charts, as Altair specs built from plain data."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd

from irisq.schema import SPECIES

IRIS_CSV = Path(__file__).parent / "data" / "iris.csv"  # Fisher's 150 flowers, for context
COLOURS = alt.Scale(domain=list(SPECIES), range=["#4c78a8", "#f58518", "#54a24b"])


@lru_cache
def iris_data() -> pd.DataFrame:
    return pd.read_csv(IRIS_CSV)


def probabilities(values: dict[str, float]) -> alt.Chart:
    frame = pd.DataFrame({"species": list(values), "probability": list(values.values())})
    chart: alt.Chart = (
        alt.Chart(frame, height=140)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            y=alt.Y("species:N", sort=list(SPECIES), title=None),
            color=alt.Color("species:N", scale=COLOURS, legend=None),
            tooltip=["species", alt.Tooltip("probability:Q", format=".1%")],
        )
    )
    return chart


def flower_on_iris(flower: dict[str, float], species: str) -> alt.LayerChart:
    """The flower as a star among the 150 Iris flowers, petal length by petal width."""
    points = (
        alt.Chart(iris_data(), height=320)
        .mark_circle(size=45, opacity=0.55)
        .encode(
            x=alt.X("petal_length:Q", title="petal length (cm)"),
            y=alt.Y("petal_width:Q", title="petal width (cm)"),
            color=alt.Color("species:N", scale=COLOURS),
            tooltip=["species", "petal_length", "petal_width"],
        )
    )
    you = pd.DataFrame([{**flower, "label": f"your flower: {species}"}])
    star = (
        alt.Chart(you)
        .mark_point(shape="diamond", size=260, filled=True, color="black")
        .encode(x="petal_length:Q", y="petal_width:Q", tooltip=["label"])
    )
    layered: alt.LayerChart = points + star
    return layered


def counts(per_species: dict[str, int]) -> alt.Chart:
    frame = pd.DataFrame({"species": list(per_species), "rows": list(per_species.values())})
    chart: alt.Chart = (
        alt.Chart(frame, height=180)
        .mark_bar()
        .encode(
            x=alt.X("species:N", sort=list(SPECIES), title=None, axis=alt.Axis(labelAngle=0)),
            # Whole rows only: three rows must not read 0.2, 0.4...
            y=alt.Y("rows:Q", title="rows", axis=alt.Axis(tickMinStep=1, format="d")),
            color=alt.Color("species:N", scale=COLOURS, legend=None),
            tooltip=["species", "rows"],
        )
    )
    return chart


def confusion(matrix: dict[str, Any]) -> alt.LayerChart:
    labels, rows = matrix["labels"], matrix["matrix"]
    frame = pd.DataFrame(
        [
            {"actual": actual, "predicted": predicted, "flowers": rows[i][j]}
            for i, actual in enumerate(labels)
            for j, predicted in enumerate(labels)
        ]
    )
    base = alt.Chart(frame, height=260).encode(
        x=alt.X("predicted:N", sort=labels, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("actual:N", sort=labels),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("flowers:Q", scale=alt.Scale(scheme="blues"), legend=None)
    )
    text = base.mark_text(fontSize=16).encode(
        text="flowers:Q",
        color=alt.condition(
            alt.datum.flowers > max(map(max, rows)) / 2, alt.value("white"), alt.value("black")
        ),
    )
    layered: alt.LayerChart = cells + text
    return layered
