"""Recent jobs in a real browser against the real stack: a scored file is found on the Jobs
page, opened from the table, and still open after a refresh of the page."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from devstack.browser import score_three_flowers
from tests.e2e.conftest import screenshot

HEADER_PX, ROW_PX, CHECKBOX_X_PX = 35, 35, 15  # Streamlit's table (a canvas): where row 1 is


def test_a_scored_file_opens_from_recent_jobs_and_stays_open_across_a_refresh(
    page: Page, frontend_url: str, tmp_path: Path
) -> None:
    score_three_flowers(page, frontend_url, tmp_path)
    job_id = re.search(r"batch=([0-9a-f-]+)", page.url)
    assert job_id is not None, page.url  # the Batch page keeps it in the URL
    job_id_text = job_id.group(1)

    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.get_by_role("heading", name="Jobs", exact=True)).to_be_visible()
    table = page.get_by_test_id("stDataFrame")
    expect(table).to_be_visible()
    box = table.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + CHECKBOX_X_PX, box["y"] + HEADER_PX + ROW_PX / 2)  # the newest

    expect(page).to_have_url(re.compile(rf"/jobs\?job={job_id_text}$"))
    expect(page.get_by_role("heading", name="Batch scoring job")).to_be_visible()
    expect(page.locator("code", has_text=job_id_text)).to_be_visible()

    page.reload()  # a new session: only the URL remembers the opened job
    expect(page.get_by_role("heading", name="Batch scoring job")).to_be_visible()
    expect(page.get_by_text("Scored 3 of 3 rows with model version")).to_be_visible()
    expect(page.locator("code", has_text=job_id_text)).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the scored CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [r["irisq_species"] for r in rows] == ["setosa", "versicolor", "virginica"]
    page.set_viewport_size({"width": 1400, "height": 1300})  # the table and the job in one
    page.get_by_role("heading", name="Jobs", exact=True).scroll_into_view_if_needed()
    page.wait_for_timeout(1500)  # let the chart draw before the picture
    screenshot(page, "jobs")

    page.get_by_role("button", name="Delete this job").click()
    expect(page.get_by_text(f"Job {job_id_text} was deleted.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/jobs$"))
