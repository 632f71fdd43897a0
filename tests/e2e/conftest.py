"""A real browser (Debian's Chromium, driven by Playwright) on the real running stack."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from devstack.browser import CHROMIUM, CHROMIUM_ARGS
from devstack.processes import ROOT, api_server, frontend_server
from tests.support.stack import Stack

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def api_url(stack: Stack) -> Iterator[str]:
    """The API under uvicorn (real event streams), on the test stack's Redis and MLflow."""
    with api_server(stack.env, stack.logs / "api.log") as api:
        yield api


@pytest.fixture(scope="session")
def frontend_url(stack: Stack, api_url: str) -> Iterator[str]:
    """The Streamlit page in front of that API."""
    env = {**stack.env, "IRISQ_API_URL": api_url}
    with frontend_server(env, stack.logs / "frontend.log") as url:
        yield url


# Package scope, not session: Playwright's sync API runs an event loop in the main thread while
# it is open, and a later test's asyncio.run() would find it running (seen in the full suite).
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(60_000)
    yield opened
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Saved under test-artifacts/screenshots for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.fixture(scope="session")
def keyed_frontend_url(stack: Stack) -> Iterator[str]:
    """The page in front of an API that requires keys, as compose runs it: no key of its own."""
    from tests.security.conftest import KEYS

    env = {**stack.env, "IRISQ_API_KEYS": json.dumps(KEYS)}
    with (
        api_server(env, stack.logs / "api-keyed-frontend.log") as api,
        frontend_server({**env, "IRISQ_API_URL": api}, stack.logs / "frontend-keyed.log") as url,
    ):
        yield url
