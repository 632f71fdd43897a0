"""The irisq frontend: `streamlit run frontend/app.py`. Pages live in frontend/pages/."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from frontend import client

PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="irisq", page_icon="🌸", layout="wide")


@st.fragment(run_every=10)
def _readiness() -> None:
    """The API's readiness, refreshed on its own every few seconds."""
    try:
        state = client.readiness()
    except client.ApiError as exc:
        st.error(str(exc))
        return
    if state.get("ready"):
        st.success("API ready")
    else:
        st.warning("API not ready")
    for name, check in state.get("checks", {}).items():
        mark = ":material/check_circle:" if check["ok"] else ":material/error:"
        st.caption(f"{mark} {name.replace('_', ' ')}: {check['detail']}")
    for warning in state.get("warnings", []):  # e.g. an API open to anyone (no keys)
        st.warning(warning, icon=":material/lock_open:")


with st.sidebar:
    st.subheader("Service")
    _readiness()

navigation = st.navigation(
    [
        st.Page(
            PAGES / "predict.py", title="Predict", icon=":material/local_florist:", default=True
        ),
        st.Page(PAGES / "batch.py", title="Batch", icon=":material/table_view:"),
        st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:"),
        st.Page(PAGES / "models.py", title="Models", icon=":material/inventory_2:"),
    ]
)
navigation.run()
