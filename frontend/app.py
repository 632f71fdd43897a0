"""The irisq frontend: `streamlit run frontend/app.py`. Pages live in frontend/views/.

When the API requires keys, a person signs in with their own key first (frontend.session);
the pages they see follow its role: Train only for admin keys. Jobs lists their recent jobs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from frontend import client, session
from irisq.keys import OPEN_WARNING

# Not `pages/`: Streamlit runs a script of a `pages/` folder next to the entry script straight
# from its URL, without this one (sign-in, sidebar, roles), until someone opens `/`. A refresh
# of /jobs?job=... as a restarted frontend's first request showed that bare page.
PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="irisq", page_icon="🌸", layout="wide")


@st.fragment(run_every=10)
def _readiness() -> None:
    """The API's readiness, refreshed on its own every few seconds."""
    try:
        state = client.readiness()
    except client.ApiError as exc:
        st.error(str(exc))
        return
    _show_readiness(state)


def _show_readiness(state: dict[str, Any]) -> None:
    if state.get("ready"):
        st.success("API ready")
    else:
        st.warning("API not ready")
    for name, check in state.get("checks", {}).items():
        mark = ":material/check_circle:" if check["ok"] else ":material/error:"
        st.caption(f"{mark} {name.replace('_', ' ')}: {check['detail']}")
    for warning in state.get("warnings", []):  # an API open to anyone, Redis's memory
        icon = ":material/lock_open:" if warning == OPEN_WARNING else ":material/memory:"
        st.warning(warning, icon=icon)


def _auth_mode() -> str:
    """`open` only when the API's readiness says so; anything else (keys, an API that cannot
    be asked, a refusal) means signing in: never an admin page by default."""
    try:
        return "open" if client.readiness().get("auth") == "open" else "api_keys"
    except client.ApiError:
        return "api_keys"


def _sign_in() -> None:
    """The only page before sign-in: a key in, the person's identity out."""
    st.title("Sign in to irisq")
    st.write(
        "This irisq requires an API key. Paste yours: it stays in this browser session and "
        "is sent with your requests only. Ask an administrator for one "
        "(`python -m irisq.keys new --name YOU --role predict`)."
    )
    with st.form("auth.form"):
        key = st.text_input("API key", type="password", key="auth.input")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            me = client.whoami(key.strip())
        except client.ApiError as exc:
            st.error(f"Not signed in. {exc}")
            return
        session.remember(key.strip(), me)
        st.rerun()


def _signed_in_panel() -> None:
    me = session.identity()
    if me is None:
        return
    st.caption(f":material/key: Signed in as **{me['name']}** ({me['role']} key)")
    if st.button("Sign out", key="auth.sign_out"):
        session.forget()
        st.rerun()


open_api = _auth_mode() == "open"
if open_api and session.identity() is None:
    session.remember(None, {"name": "anonymous", "role": "admin"})
elif not open_api and session.identity() is not None and session.api_key() is None:
    session.forget()  # the API asks for keys now: the anonymous session is over

with st.sidebar:
    st.subheader("Service")
    _readiness()
    if not open_api:
        _signed_in_panel()

if session.identity() is None:
    pages = [st.Page(_sign_in, title="Sign in", icon=":material/login:", default=True)]
    # Every page's URL signs in too (hidden from the menu), rather than Streamlit's "page not
    # found": a refresh of /jobs?job=... asks for the key, then shows that very page (a page
    # is known by its URL path), its query intact.
    pages += [
        st.Page(_sign_in, title="Sign in", url_path=view.stem, visibility="hidden")
        for view in sorted(PAGES.glob("*.py"))
    ]
else:
    predict = PAGES / "predict.py"
    pages = [
        # The home page, at `/`; its own name `/predict` (a link, a refresh after signing in
        # at /predict) is a hidden second entry: Streamlit keys pages by URL path alone.
        st.Page(
            predict, title="Predict", icon=":material/local_florist:", default=True, url_path=""
        ),
        st.Page(predict, title="Predict", url_path="predict", visibility="hidden"),
        st.Page(PAGES / "batch.py", title="Batch", icon=":material/table_view:"),
    ]
    if session.is_admin():
        pages.append(st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:"))
    pages.append(st.Page(PAGES / "jobs.py", title="Jobs", icon=":material/history:"))
    pages.append(st.Page(PAGES / "models.py", title="Models", icon=":material/inventory_2:"))
    pages.append(st.Page(PAGES / "monitoring.py", title="Monitoring", icon=":material/monitoring:"))
st.navigation(pages).run()
