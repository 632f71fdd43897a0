"""The README's pictures, taken from a running stack: `make screenshots` (after `make run`).

Drives Debian's Chromium through each page as a person would (predict a flower, score a
three-flower file, retrain, open the batch on the Jobs page and refresh it, list the models)
and saves `docs/images/<page>.png`. Each step waits for what the page must show, so a picture
is never of a page still loading; a step that never shows it fails with Playwright's
timeout instead of saving a wrong picture.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from devstack.browser import CHROMIUM, CHROMIUM_ARGS, score_three_flowers
from devstack.processes import ROOT
from irisq.ranges import TYPICAL_FLOWERS

STEP_MILLISECONDS = 120_000  # a retrain on a busy laptop
DRAWN_MILLISECONDS = 1500  # charts animate in after their data arrives


def take(frontend_url: str, out: Path) -> list[Path]:
    """One picture per page of the frontend at `frontend_url`, saved in `out`."""
    from playwright.sync_api import Page, expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def shot(page: Page, name: str) -> None:
        page.wait_for_timeout(DRAWN_MILLISECONDS)
        path = out / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        saved.append(path)

    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as folder:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(STEP_MILLISECONDS)
        expect.set_options(timeout=STEP_MILLISECONDS)

        page.goto(frontend_url)
        page.get_by_role("button", name="Typical virginica").click()
        # As a person would: see all four numbers in place before pressing Predict (the
        # preset's rerun redraws them one by one).
        for feature, value in TYPICAL_FLOWERS["virginica"].items():
            label = feature.replace("_", " ").capitalize() + " (cm)"
            expect(page.get_by_role("spinbutton", name=label)).to_have_value(f"{value:.1f}")
        page.get_by_role("button", name="Predict", exact=True).click()
        expect(page.get_by_text(re.compile(r"confidence \(model version"))).to_be_visible()
        shot(page, "predict")

        score_three_flowers(page, frontend_url, Path(folder))
        shot(page, "batch")
        batch = re.search(r"batch=([0-9a-f-]+)", page.url)
        if batch is None:
            raise RuntimeError(f"the Batch page did not put the job in its URL: {page.url}")

        page.goto(f"{frontend_url}/train")
        page.get_by_role("button", name="Retrain").click()
        verdict = re.compile(r"Version \d+ (became the champion|was registered)")
        expect(page.get_by_text(verdict)).to_be_visible()
        shot(page, "train")

        page.goto(f"{frontend_url}/jobs?job={batch.group(1)}")
        page.reload()  # the opened job survives a refresh: that is the page's promise
        expect(page.get_by_text("Scored 3 of 3 rows")).to_be_visible()
        shot(page, "jobs")

        page.goto(f"{frontend_url}/models")
        expect(page.get_by_text("the champion is")).to_be_visible()
        shot(page, "models")

        page.goto(f"{frontend_url}/monitoring")
        page.get_by_text("Last hour", exact=True).click()
        expect(
            page.get_by_text(re.compile(r"(Drift|No drift) .*over [\d,]+ prediction"))
        ).to_be_visible(timeout=60_000)
        page.wait_for_timeout(1500)  # the charts drawn
        shot(page, "monitoring")
        browser.close()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8001", help="the running frontend")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    for path in take(args.url, args.out):
        print(path)


if __name__ == "__main__":
    main()
