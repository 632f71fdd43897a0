"""Registered model versions, with the champion marked."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from frontend import client
from irisq.settings import get_settings

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
            "algorithm": v["algorithm"],
            "accuracy": v["metrics"].get("accuracy"),
            "macro F1": v["metrics"].get("f1_macro"),
            "created": pd.Timestamp(v["created_at"]).tz_convert(None),
            "parameters": ", ".join(f"{k}={p}" for k, p in sorted(v["params"].items())),
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
