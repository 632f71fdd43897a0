"""The frontend's client against the real API: a job followed on its real event stream, and
found by the listing. No browser: this is the contract between client.py and the API."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest

from frontend import client, session
from irisq.settings import get_settings

ROWS = 300_000  # a few of the worker's chunks (131,072 rows each): a few progress events


@pytest.fixture
def open_api(api_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("IRISQ_API_URL", api_url)
    monkeypatch.setattr(session, "api_key", lambda: None)  # no Streamlit session: open API
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _flowers(rows: int) -> bytes:
    text = io.StringIO()
    text.write("sepal_length,sepal_width,petal_length,petal_width\n")
    for i in range(rows):
        text.write(("5.1,3.5,1.4,0.2\n", "6.4,3.2,4.5,1.5\n", "6.3,3.3,6.0,2.5\n")[i % 3])
    return text.getvalue().encode()


@pytest.mark.usefixtures("open_api")
def test_a_batch_is_followed_on_its_event_stream_and_listed() -> None:
    accepted = client.upload_batch(_flowers(ROWS), "many.csv", "reject")
    seen: list[dict[str, Any]] = []

    final = client.follow_job(accepted["job_id"], seen.append, deadline_seconds=120)

    assert final is not None
    assert final["status"] == "succeeded", final
    assert final["result"]["rows_scored"] == ROWS  # the whole job, result included
    scoring = [update["progress"] for update in seen if update["stage"] == "scoring"]
    assert len(scoring) >= 2
    assert scoring == sorted(scoring)
    assert scoring[-1] == 1.0

    # A finished job's stream replays its progress and ends at once: nothing to wait for.
    # (Live, a first look at a job that had not reported yet may have come before them.)
    replayed: list[dict[str, Any]] = []
    assert client.follow_job(accepted["job_id"], replayed.append, 5) == final
    again = [update["progress"] for update in replayed if update["stage"] == "scoring"]
    assert again == scoring[-len(again) :]
    assert len(again) >= 2

    newest = client.list_jobs(kind="batch", limit=1)
    assert [job["job_id"] for job in newest["jobs"]] == [accepted["job_id"]]
    assert "result" not in newest["jobs"][0]
    assert accepted["job_id"] not in {
        job["job_id"] for job in client.list_jobs(kind="prediction", limit=50)["jobs"]
    }
    if newest["next_cursor"]:  # older jobs: the cursor leads on (to a batch, or none left)
        older = client.list_jobs(kind="batch", limit=1, cursor=newest["next_cursor"])["jobs"]
        assert all(job["created_at"] <= newest["jobs"][0]["created_at"] for job in older)
        assert accepted["job_id"] not in {job["job_id"] for job in older}

    client.delete_job(accepted["job_id"])
    with pytest.raises(client.ApiError, match="410"):
        client.follow_job(accepted["job_id"], deadline_seconds=5)
