"""API keys, roles, per-key jobs, the rate limit and the queue cap, on the real stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.idempotency import REPLAYED
from api.main import OpenApiRefusedError, create_app
from irisq.keys import hash_key, new_key
from irisq.settings import ApiKey, Settings
from tests.support.stack import SETOSA, Stack

ALICE, BOB, ADMIN = new_key(), new_key(), new_key()
KEYS = [
    ApiKey(name="alice", role="predict", sha256=hash_key(ALICE)),
    ApiKey(name="bob", role="predict", sha256=hash_key(BOB)),
    ApiKey(name="ops", role="admin", sha256=hash_key(ADMIN)),
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keyed(stack: Stack) -> Iterator[TestClient]:
    settings = stack.settings.model_copy(update={"api_keys": KEYS})
    with TestClient(create_app(settings)) as client:
        yield client


def test_calls_without_a_valid_key_are_401_with_a_bearer_challenge(keyed: TestClient) -> None:
    missing = keyed.post("/v1/predictions", json={"rows": [SETOSA]})
    wrong = keyed.get("/v1/models", headers=bearer("irisq_not-a-key"))
    basic = keyed.get("/v1/models", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    drift = keyed.get("/v1/monitoring/drift")
    for response in (missing, wrong, basic, drift):
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"
    assert keyed.get("/healthz").status_code == 200  # probes stay open
    assert keyed.get("/readyz").json()["auth"] == "api_keys"


def test_a_predict_key_predicts_but_may_not_train_promote_or_set_a_challenger(
    keyed: TestClient,
) -> None:
    assert (
        keyed.post("/v1/predictions", json={"rows": [SETOSA]}, headers=bearer(ALICE)).status_code
        == 202
    )
    training = keyed.post(
        "/v1/training", json={"algorithm": "logistic_regression"}, headers=bearer(ALICE)
    )
    promotion = keyed.post("/v1/models/1/promote", headers=bearer(ALICE))
    challenger = keyed.put("/v1/models/challenger", json={"version": 1}, headers=bearer(ALICE))
    cleared = keyed.delete("/v1/models/challenger", headers=bearer(ALICE))
    trained_as_challenger = keyed.post(
        "/v1/training?challenger=true", json={"algorithm": "svc"}, headers=bearer(ALICE)
    )
    for response in (training, promotion, challenger, cleared, trained_as_challenger):
        assert response.status_code == 403, response.text
        assert "admin" in response.json()["detail"]
    assert keyed.get("/v1/models", headers=bearer(ALICE)).status_code == 200


def test_a_job_is_visible_to_its_key_and_admins_only(keyed: TestClient, stack: Stack) -> None:
    submitted = keyed.post("/v1/predictions", json={"rows": [SETOSA]}, headers=bearer(ALICE))
    job_id = submitted.json()["job_id"]

    mine = keyed.get(f"/v1/jobs/{job_id}", headers=bearer(ALICE))
    theirs = keyed.get(f"/v1/jobs/{job_id}", headers=bearer(BOB))
    admin = keyed.get(f"/v1/jobs/{job_id}", headers=bearer(ADMIN))
    bob_cancels = keyed.post(f"/v1/jobs/{job_id}/cancel", headers=bearer(BOB))
    bob_deletes = keyed.delete(f"/v1/jobs/{job_id}", headers=bearer(BOB))

    assert (mine.status_code, admin.status_code) == (200, 200)
    assert mine.json()["owner"] == "alice"
    # Another key cannot even learn that the job exists: the same 404 as a made-up id.
    assert (theirs.status_code, bob_cancels.status_code, bob_deletes.status_code) == (404,) * 3
    assert theirs.json()["detail"] == f"no job with id {job_id!r}"
    assert stack.wait(job_id)["status"] == "succeeded"  # Bob's cancel and DELETE did nothing


def test_open_mode_says_so_and_production_refuses_it(stack: Stack) -> None:
    readiness = stack.api.get("/readyz").json()
    assert readiness["auth"] == "open"
    assert "NO API KEYS" in readiness["warnings"][0]

    production = stack.settings.model_copy(update={"env": "production"})
    with pytest.raises(OpenApiRefusedError, match="IRISQ_API_KEYS"):
        create_app(production)
    create_app(production.model_copy(update={"api_keys": KEYS}))  # with keys it starts


def test_more_requests_than_the_rate_limit_get_429_with_retry_after(stack: Stack) -> None:
    # Its own key: the limit counts in Redis, across API instances and tests.
    carol = new_key()
    keys = [*KEYS, ApiKey(name="carol", role="predict", sha256=hash_key(carol))]
    settings = stack.settings.model_copy(update={"api_keys": keys, "rate_limit_per_second": 5})
    with TestClient(create_app(settings)) as client:
        answers = [client.get("/v1/models", headers=bearer(carol)) for _ in range(30)]
        other = client.get("/v1/models", headers=bearer(ADMIN))
    codes = [answer.status_code for answer in answers]
    assert codes.count(200) >= 5
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, codes
    assert refused[0].headers["Retry-After"] == "1"
    assert "more than 5 requests" in refused[0].json()["detail"]
    assert other.status_code == 200  # the limit is per key


@pytest.mark.parametrize("per_second", [1000, 0], ids=["rate-limited", "no-rate-limit"])
def test_a_full_queue_is_a_503_before_the_body_is_read_and_nothing_is_recorded(
    stack: Stack, redis_url: str, per_second: int
) -> None:
    # A database no worker consumes, so the queue only grows.
    idle = redis_url.rsplit("/", 1)[0] + "/6"
    update = {"redis_url": idle, "max_queue_depth": 3, "rate_limit_per_second": per_second}
    settings: Settings = stack.settings.model_copy(update=update)
    first = {"Idempotency-Key": "first-try"}
    json_body = {"Content-Type": "application/json"}
    with TestClient(create_app(settings)) as client:
        client.app.state.resources.redis.flushdb()  # type: ignore[attr-defined]
        codes = [client.post("/v1/predictions", json={"rows": [SETOSA]}, headers=first).status_code]
        codes += [
            client.post("/v1/predictions", json={"rows": [SETOSA]}).status_code for _ in range(4)
        ]
        refused = client.post("/v1/predictions", json={"rows": [SETOSA]})
        # The guard refuses with the rate limit's round trip: a body it never reads cannot
        # make it answer anything else, on either scoring route.
        unread = [
            client.post(path, content=b"{not json", headers=json_body).status_code
            for path in ("/v1/predictions", "/invocations")
        ]
        # A retry is let through: it gets the job its first try made. A new key's request
        # is refused by the route's own check, just before it would push.
        retried = client.post("/v1/predictions", json={"rows": [SETOSA]}, headers=first)
        new_key = client.post(
            "/v1/predictions", json={"rows": [SETOSA]}, headers={"Idempotency-Key": "new"}
        )
        records = len(list(client.app.state.resources.redis.scan_iter("irisq:job:*")))  # type: ignore[attr-defined]
        client.app.state.resources.redis.flushdb()  # type: ignore[attr-defined]
    assert codes == [202, 202, 202, 503, 503]
    assert refused.headers["Retry-After"].isdigit()
    assert "'predict' queue is full (3 tasks waiting)" in refused.json()["detail"]
    assert unread == [503, 503]
    assert (retried.status_code, retried.headers.get(REPLAYED)) == (202, "true"), retried.text
    assert new_key.status_code == 503, new_key.text
    assert "'predict' queue is full" in new_key.json()["detail"]
    assert records == 3
