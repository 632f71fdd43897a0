"""Registered model versions, with the champion marked."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend import client, session
from frontend.status import leave_note, show_note
from irisq.settings import get_settings

NOTE = "models.message"

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
champion = models["champion"]
st.write(
    f"Model **{models['name']}**: {len(versions)} registered version(s); "
    + (f"the champion is **version {champion}**." if champion else "no champion yet.")
)
table = pd.DataFrame(
    [
        {
            "champion": "★" if v["is_champion"] else "",
            "version": int(v["version"]),
            "algorithm": (v["training"] or {}).get("algorithm", "—"),
            "accuracy": v["metrics"].get("accuracy"),
            "macro F1": v["metrics"].get("f1_macro"),
            "created": pd.Timestamp(v["created_at"]).tz_convert(None),
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
        "accuracy": st.column_config.NumberColumn(format="percent"),
        "macro F1": st.column_config.NumberColumn(format="%.3f"),
        "created": st.column_config.DatetimeColumn("created (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    },
)


def _promote(version: str) -> None:
    try:
        client.promote(version)
    except client.ApiError as exc:
        leave_note(NOTE, "error", str(exc))
        return
    leave_note(NOTE, "success", f"Version {version} is the champion now.")


if session.is_admin():  # promotion is for admin keys; the API refuses it to others anyway
    candidates = [v["version"] for v in versions if v.get("signed") and not v["is_champion"]]
    st.subheader("Promote a version")
    if candidates:
        left, right = st.columns([1, 3], vertical_alignment="bottom")
        chosen = left.selectbox("Version", candidates, key="models.promote.version")
        right.button(
            "Make it the champion",
            key="models.promote",
            on_click=_promote,
            args=(chosen,),
            help="Now, without the quality gate: a rollback, or a version judged better.",
        )
    else:
        st.caption("No other version trained here to promote.")
    show_note(NOTE)
