"""Registered model versions with the champion and the challenger marked, each linked to its
run in MLflow; how the challenger agrees with the champion on live traffic; and, for admin
keys, promotion and the challenger's controls."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from frontend import client, session
from frontend.status import leave_note, show_note
from irisq.schema import SPECIES
from irisq.settings import get_settings

NOTE = "models.message"


def _role(version: dict[str, Any]) -> str:
    return (
        "champion" if version["is_champion"] else "challenger" if version["is_challenger"] else ""
    )


def _table(versions: list[dict[str, Any]]) -> None:
    table = pd.DataFrame(
        [
            {
                "role": _role(v),
                "version": int(v["version"]),
                "algorithm": (v["training"] or {}).get("algorithm", "—"),
                "accuracy": v["metrics"].get("accuracy"),
                "macro F1": v["metrics"].get("f1_macro"),
                "created": pd.Timestamp(v["created_at"]).tz_convert(None),
                "gate": v.get("description") or "",
                "run": v.get("run_url"),
                "parameters": ", ".join(
                    f"{k}={p}" for k, p in sorted((v["training"] or {}).get("params", {}).items())
                ),
                "trained here": "yes" if v.get("signed") else "no: never loaded",
            }
            for v in versions
        ]
    )
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            "role": st.column_config.TextColumn("role", width="medium"),
            "accuracy": st.column_config.NumberColumn(format="percent"),
            "macro F1": st.column_config.NumberColumn(format="%.3f"),
            "created": st.column_config.DatetimeColumn(
                "created (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "gate": st.column_config.TextColumn("gate's decision", width="medium"),
            "run": st.column_config.LinkColumn("MLflow run", display_text="open run"),
        },
    )


def _act(action: Any, done: str, *args: str) -> None:
    try:
        action(*args)
    except client.ApiError as exc:
        leave_note(NOTE, "error", str(exc))
        return
    leave_note(NOTE, "success", done)


def _shadow(models: dict[str, Any]) -> None:
    challenger, shadow = models["challenger"], models["shadow"]
    st.subheader(f"Challenger: version {challenger}")
    st.caption(
        "Scored in the shadow of the champion on live predictions: clients get the "
        "champion's answers, and these figures compare the two on the same rows."
    )
    if shadow is None or not shadow["rows"]:
        st.info("No prediction has been compared yet: they will be, as they arrive.")
    else:
        cells = st.columns(4)
        cells[0].metric("Rows compared", f"{shadow['rows']:,}")
        cells[1].metric("Agreement", f"{shadow['agreement']:.1%}")
        cells[2].metric(
            "Mean probability gap",
            f"{shadow['mean_probability_gap']:.3f}",
            help="0: the same probabilities; 1: all their weight on different species.",
        )
        cells[3].metric("Shadow failures", shadow["failures"])
        confusion = pd.DataFrame(shadow["confusion"]).T.reindex(index=SPECIES, columns=SPECIES)
        confusion.index.name = f"champion {shadow['champion']} said"
        st.caption("Rows by the champion's species (rows) and the challenger's (columns)")
        st.dataframe(confusion)
    if session.is_admin():
        left, right = st.columns(2)
        left.button(
            "Promote challenger",
            type="primary",
            key="models.promote_challenger",
            on_click=_act,
            args=(client.promote, f"Version {challenger} is the champion now.", challenger),
            help="Make it the champion now; it stops being the challenger.",
        )
        right.button(
            "Stop shadow scoring",
            key="models.clear_challenger",
            on_click=_act,
            args=(client.clear_challenger, "There is no challenger now."),
        )


def _admin(versions: list[dict[str, Any]]) -> None:
    """Promote any version trained here, or make one the challenger."""
    others = [v["version"] for v in versions if v.get("signed") and not v["is_champion"]]
    st.subheader("Promote a version, or try one as the challenger")
    if not others:
        st.caption("No other version trained here.")
        return
    left, middle, right = st.columns([1, 2, 2], vertical_alignment="bottom")
    chosen = left.selectbox("Version", others, key="models.promote.version")
    middle.button(
        "Make it the champion",
        key="models.promote",
        on_click=_act,
        args=(client.promote, f"Version {chosen} is the champion now.", chosen),
        help="Now, without the quality gate: a rollback, or a version judged better.",
    )
    right.button(
        "Make it the challenger",
        key="models.set_challenger",
        on_click=_act,
        args=(client.set_challenger, f"Version {chosen} is the challenger now.", chosen),
        help="Scored in the shadow of the champion on live predictions.",
    )


st.title("Models")
st.link_button("Open the MLflow UI", get_settings().mlflow_ui_url)
try:
    models = client.list_models()
except client.ApiError as exc:
    st.error(str(exc))
    st.stop()
versions = models["versions"]
if not versions:
    st.info("No model is registered yet. Train one on the Train page.")
    st.stop()
champion, challenger = models["champion"], models["challenger"]
st.write(
    f"Model **{models['name']}**: {len(versions)} registered version(s); "
    + (f"the champion is **version {champion}**" if champion else "no champion yet")
    + (f", the challenger **version {challenger}**." if challenger else ".")
)
_table(versions)
show_note(NOTE)
if challenger:
    _shadow(models)
if session.is_admin():  # the API refuses these to other keys anyway
    _admin(versions)
