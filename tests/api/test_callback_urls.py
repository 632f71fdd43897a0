"""`callback_url` at submit: a malformed one, or in production one that points inside the
network, is a 422 naming the field, and nothing is queued."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from irisq.keys import hash_key, new_key
from irisq.quotas import OwnerKeys
from irisq.settings import ApiKey
from tests.support.stack import SETOSA, Stack

KEY = new_key()
CSV = b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
SUBMISSIONS: dict[str, dict[str, Any]] = {
    "predictions": {"json": {"rows": [SETOSA]}},
    "batches": {"files": {"file": ("f.csv", CSV, "text/csv")}},
    "training": {"json": {"algorithm": "logistic_regression"}},
}


@pytest.fixture(scope="module")
def production(stack: Stack) -> Iterator[TestClient]:
    settings = stack.settings.model_copy(
        update={
            "env": "production",
            "api_keys": [ApiKey(name="hooks", role="admin", sha256=hash_key(KEY))],
            "webhook_allowed_hosts": ["receiver.internal"],
        }
    )
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


def jobs_of(api: TestClient) -> int:
    return int(api.app.state.resources.redis.zcard(OwnerKeys("hooks").jobs))  # type: ignore[attr-defined]


@pytest.mark.parametrize("route", list(SUBMISSIONS))
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://localhost/hook",
        "ftp://example.com/hook",
        "not a url",
        "https://user:secret@example.com/hook",
        "https://example.com/" + "a" * 2100,
    ],
)
def test_a_callback_url_inside_the_network_or_malformed_is_422_naming_it(
    production: TestClient, route: str, url: str
) -> None:
    before = jobs_of(production)

    response = production.post(f"/v1/{route}", params={"callback_url": url}, **SUBMISSIONS[route])

    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == ["callback_url"]
    assert jobs_of(production) == before


def test_a_public_or_allowed_callback_url_is_accepted_and_kept_on_the_job(
    production: TestClient,
) -> None:
    for url in ("https://hooks.example.com/irisq", "http://receiver.internal:9000/hook"):
        response = production.post(
            "/v1/predictions", params={"callback_url": url}, json={"rows": [SETOSA]}
        )
        assert response.status_code == 202, response.text
        job = production.get(response.headers["location"]).json()
        assert job["callback_url"] == url
