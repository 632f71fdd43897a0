"""A real browser (Debian's Chromium, driven by Playwright) on the real running stack."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devstack.processes import ROOT, api_server, frontend_server
from tests.support.stack import Stack

CHROMIUM = "/usr/bin/chromium"
# The flags this machine needs: no sandbox as root, and no background calls to the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
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


FLOWERS = (
    "Id,SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm,Species\n"
    "1,5.1,3.5,1.4,0.2,Iris-setosa\n"
    "2,7.0,3.2,4.7,1.4,Iris-versicolor\n"
    "3,6.3,3.3,6.0,2.5,Iris-virginica\n"
)


def score_three_flowers(page: Page, frontend_url: str, folder: Path) -> None:
    """On the Batch page, as a person does: upload Kaggle's three-flower file, score it."""
    upload = folder / "Iris.csv"
    upload.write_text(FLOWERS)
    page.goto(f"{frontend_url}/batch")
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Score file").click()
    expect(page.get_by_text("Scored 3 of 3 rows")).to_be_visible()


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
