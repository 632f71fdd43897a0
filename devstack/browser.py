"""Debian's Chromium driven by Playwright, as the browser tests and `make screenshots` drive it.

Never a downloaded browser (Playwright's own would need the network): the machine's
`/usr/bin/chromium`, with the flags a root user on a build machine needs.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

CHROMIUM = "/usr/bin/chromium"
# No sandbox as root, and no background calls to the network.
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
# Kaggle's layout of the Iris file, one flower of each species.
FLOWERS = (
    "Id,SepalLengthCm,SepalWidthCm,PetalLengthCm,PetalWidthCm,Species\n"
    "1,5.1,3.5,1.4,0.2,Iris-setosa\n"
    "2,7.0,3.2,4.7,1.4,Iris-versicolor\n"
    "3,6.3,3.3,6.0,2.5,Iris-virginica\n"
)


def score_three_flowers(page: Page, frontend_url: str, folder: Path) -> None:
    """On the Batch page, as a person does: upload the three-flower file, score it."""
    upload = folder / "Iris.csv"
    upload.write_text(FLOWERS)
    page.goto(f"{frontend_url}/batch")
    page.locator("input[type=file]").set_input_files(str(upload))
    page.get_by_role("button", name="Score file").click()
    expect(page.get_by_text("Scored 3 of 3 rows")).to_be_visible()
