"""The frontend acts as the person using it: signed in with their own key, role by role."""

from __future__ import annotations

import json
import re

import httpx
from playwright.sync_api import Page, expect

from devstack.processes import api_server, frontend_server
from tests.e2e.conftest import screenshot
from tests.security.conftest import ADMIN, ALICE, KEYS
from tests.support.stack import VIRGINICA, Stack


def _sign_in(page: Page, url: str, key: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Sign in to irisq")).to_be_visible()
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_an_anonymous_visitor_can_only_sign_in(page: Page, keyed_frontend_url: str) -> None:
    page.goto(keyed_frontend_url)
    expect(page.get_by_role("heading", name="Sign in to irisq")).to_be_visible()
    screenshot(page, "sign-in")

    for path in ("/train", "/predict", "/batch", "/models"):
        page.goto(keyed_frontend_url + path)  # Streamlit: no such page here, the sign-in
        expect(page.get_by_role("heading", name="Sign in to irisq")).to_be_visible()
        expect(page.get_by_role("button", name="Retrain")).to_have_count(0)
        expect(page.get_by_role("button", name="Predict", exact=True)).to_have_count(0)

    page.goto(keyed_frontend_url)
    expect(page.get_by_role("heading", name="Sign in to irisq")).to_be_visible()
    page.get_by_label("API key").fill("irisq_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("this API key is not valid")).to_be_visible()


def test_a_predict_key_predicts_and_never_sees_training(
    page: Page, keyed_frontend_url: str
) -> None:
    _sign_in(page, keyed_frontend_url, ALICE)

    expect(page.get_by_text("Signed in as alice (predict key)")).to_be_visible()
    page.get_by_role("button", name="Predict", exact=True).click()
    expect(page.get_by_text(re.compile(r"setosa with \d+% confidence"))).to_be_visible()
    expect(page.get_by_role("link", name="Predict")).to_be_visible()
    expect(page.get_by_role("link", name="Train")).to_have_count(0)
    page.goto(f"{keyed_frontend_url}/train")  # a new page load: a new session, signed out
    expect(page.get_by_role("button", name="Retrain")).to_have_count(0)


def test_an_admin_key_sees_training_and_promotion(page: Page, keyed_frontend_url: str) -> None:
    _sign_in(page, keyed_frontend_url, ADMIN)

    expect(page.get_by_text("Signed in as ops (admin key)")).to_be_visible()
    page.get_by_role("link", name="Train").click()
    expect(page.get_by_role("button", name="Retrain")).to_be_visible()
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_text(re.compile(r"registered version\(s\)"))).to_be_visible()
    expect(page.get_by_role("heading", name="Promote a version")).to_be_visible()
    page.wait_for_timeout(1000)
    screenshot(page, "models-admin")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to irisq")).to_be_visible()


def test_a_refreshed_job_page_signs_in_then_reopens_the_job(page: Page, stack: Stack) -> None:
    """A refresh of /jobs?job=..., even as a restarted frontend's first request: the sign-in
    (never the bare page, as Streamlit serves a `pages/` folder until someone opens `/`, nor
    "page not found"), then that job."""
    env = {**stack.env, "IRISQ_API_KEYS": json.dumps(KEYS)}
    with (
        api_server(env, stack.logs / "api-first-visit.log") as api,
        frontend_server({**env, "IRISQ_API_URL": api}, stack.logs / "frontend-first.log") as url,
    ):
        answer = httpx.post(
            f"{api}/v1/predictions",
            params={"wait": 20},
            json={"rows": [VIRGINICA]},
            headers={"Authorization": f"Bearer {ALICE}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["job_id"]

        page.goto(f"{url}/jobs?job={job_id}")
        expect(page.get_by_role("heading", name="Sign in to irisq")).to_be_visible()
        expect(page.get_by_role("heading", name="Jobs", exact=True)).to_have_count(0)
        page.get_by_label("API key").fill(ALICE)
        page.get_by_role("button", name="Sign in").click()

        # A fresh frontend's first page with a table and charts imports them: seconds.
        expect(page.get_by_role("heading", name="Prediction job")).to_be_visible(timeout=30_000)
        expect(page.get_by_text(re.compile(r"virginica with \d+% confidence"))).to_be_visible()
        expect(page).to_have_url(re.compile(rf"/jobs\?job={job_id}$"))
