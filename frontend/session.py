"""Who is using this page: the API key they signed in with, kept in their session only.

The frontend holds no key of its own. Each person signs in with their own API key, which
lives in this browser session's state on the server (never in a URL, a cookie or a log)
and goes with every API call they make; the pages follow the key's role. When the API runs
open (no keys: local development) nobody signs in and everyone acts as its anonymous admin.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

KEY = "auth.key"
IDENTITY = "auth.me"  # the API's /v1/me answer for the key


def api_key() -> str | None:
    key: str | None = st.session_state.get(KEY)
    return key


def identity() -> dict[str, Any] | None:
    """{name, role, ...} of the signed-in key, or None."""
    me: dict[str, Any] | None = st.session_state.get(IDENTITY)
    return me


def is_admin() -> bool:
    me = identity()
    return me is not None and me.get("role") == "admin"


def remember(key: str | None, me: dict[str, Any]) -> None:
    st.session_state[KEY] = key
    st.session_state[IDENTITY] = me


def forget() -> None:
    for name in list(st.session_state):
        del st.session_state[name]  # everything this person did goes with their key
