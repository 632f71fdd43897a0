"""`GET /v1/jobs`: each key pages through its own jobs, newest first, exactly once each, while
new jobs keep arriving; admins see everyone's; bad parameters are 422s naming the field."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from irisq.keys import hash_key, new_key
from irisq.settings import ApiKey
from tests.support.stack import SETOSA, Stack

# Names of their own: the session's other tests never list under them.
LISTERS = {name: new_key() for name in ("lister-a", "lister-b", "lister-c")}
ADMIN = new_key()
KEYS = [ApiKey(name=n, role="predict", sha256=hash_key(k)) for n, k in LISTERS.items()]
KEYS.append(ApiKey(name="lister-ops", role="admin", sha256=hash_key(ADMIN)))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed(stack: Stack) -> Iterator[TestClient]:
    settings = stack.settings.model_copy(update={"api_keys": KEYS})
    with TestClient(create_app(settings)) as client:
        yield client


def submit(api: TestClient, key: str) -> str:
    response = api.post("/v1/predictions", json={"rows": [SETOSA]}, headers=bearer(key))
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def every_page(api: TestClient, key: str, query: str = "limit=50") -> list[dict[str, Any]]:
    """All pages in order, following `next_cursor` (and checking `Link` says the same)."""
    jobs: list[dict[str, Any]] = []
    url: str | None = f"/v1/jobs?{query}"
    while url is not None:
        page = api.get(url, headers=bearer(key))
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["jobs"]) <= 50
        jobs += body["jobs"]
        link = page.headers.get("link")
        if body["next_cursor"] is None:
            assert link is None
            url = None
        else:
            assert link is not None
            found = re.fullmatch(r'<(/v1/jobs\?[^>]+)>; rel="next"', link)
            assert found is not None
            assert f"cursor={body['next_cursor']}" in found.group(1)
            url = found.group(1)
    return jobs


def test_1000_jobs_of_3_keys_page_exactly_once_while_new_ones_arrive(keyed: TestClient) -> None:
    names = list(LISTERS)
    before: dict[str, list[str]] = {name: [] for name in names}
    for i in range(1000):
        name = names[i % 3]
        before[name].append(submit(keyed, LISTERS[name]))

    arrived: dict[str, list[str]] = {name: [] for name in names}
    stop = threading.Event()

    def keep_submitting() -> None:
        while not stop.is_set():
            for name in names:
                arrived[name].append(submit(keyed, LISTERS[name]))

    newcomer = threading.Thread(target=keep_submitting)
    newcomer.start()
    try:
        listed = {name: every_page(keyed, LISTERS[name]) for name in names}
        everyone = every_page(keyed, ADMIN)
        of_b = every_page(keyed, ADMIN, "limit=50&owner=lister-b")
    finally:
        stop.set()
        newcomer.join()

    assert all(arrived.values()), "jobs kept arriving while the pages were read"
    for name in names:
        ids = [job["job_id"] for job in listed[name]]
        assert len(ids) == len(set(ids)), f"{name}: a job listed twice"
        assert set(before[name]) <= set(ids), f"{name}: a job missing"
        assert set(ids) <= set(before[name]) | set(arrived[name]), f"{name}: another key's job"
        assert {job["owner"] for job in listed[name]} == {name}
        created = [job["created_at"] for job in listed[name]]
        assert created == sorted(created, reverse=True), "newest first"
        assert all(job.get("result") is None for job in listed[name])  # summaries only
    all_ids = [job["job_id"] for job in everyone]
    assert len(all_ids) == len(set(all_ids))
    assert set().union(*before.values()) <= set(all_ids)
    b_ids = {job["job_id"] for job in of_b}
    assert set(before["lister-b"]) <= b_ids <= set(before["lister-b"]) | set(arrived["lister-b"])


def test_filters_keep_the_order_and_pages_may_be_short(keyed: TestClient, stack: Stack) -> None:
    key = LISTERS["lister-c"]
    ids = [submit(keyed, key) for _ in range(3)]
    for job_id in ids:
        stack.wait(job_id)

    succeeded = every_page(keyed, key, "status=succeeded&kind=prediction&limit=2")
    batches = every_page(keyed, key, "kind=batch")

    assert [job["job_id"] for job in succeeded][:3] == ids[::-1]
    assert {(job["kind"], job["status"]) for job in succeeded} == {("prediction", "succeeded")}
    assert batches == []


def test_a_predict_key_may_not_list_another_keys_jobs(keyed: TestClient) -> None:
    refused = keyed.get("/v1/jobs?owner=lister-b", headers=bearer(LISTERS["lister-a"]))
    own = keyed.get("/v1/jobs?owner=lister-a&limit=1", headers=bearer(LISTERS["lister-a"]))

    assert refused.status_code == 403
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=" + "A" * 40, "cursor"),
        ("cursor=" + "A" * 600, "cursor"),
        ("kind=everything", "kind"),
        ("status=lost", "status"),
        ("owner=a%20b", "owner"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(keyed: TestClient, query: str, field: str) -> None:
    response = keyed.get(f"/v1/jobs?{query}", headers=bearer(ADMIN))

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_an_altered_cursor_is_refused(keyed: TestClient) -> None:
    key = LISTERS["lister-a"]
    cursor = keyed.get("/v1/jobs?limit=1", headers=bearer(key)).json()["next_cursor"]
    assert cursor is not None
    flipped = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]

    response = keyed.get(f"/v1/jobs?limit=1&cursor={flipped}", headers=bearer(key))

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "cursor"
