"""MLflow's own clients against a keyed irisq, each the way the README tells its users.

`mlflow.deployments` sends a key (MLFLOW_TRACKING_TOKEN) to the public API; MLflow's
`ScoringServerClient` cannot send one, so it scores through the keyless scoring listener,
which is off unless configured and serves the scoring protocol only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlparse

import httpx
import pandas as pd
import pytest
import redis
from mlflow.deployments import get_deploy_client
from mlflow.pyfunc.scoring_server.client import ScoringServerClient
from requests import HTTPError

from api.main import ScoringListenerOffError, create_scoring_app
from devstack.processes import api_server, scoring_server
from irisq.keys import hash_key, new_key
from irisq.quotas import OwnerKeys
from tests.support.stack import SETOSA, VERSICOLOR, VIRGINICA, Stack

FLOWERS = pd.DataFrame([SETOSA, VERSICOLOR, VIRGINICA])
SPECIES = ["setosa", "versicolor", "virginica"]
ANALYST = new_key()


@pytest.fixture(scope="module")
def keyed_env(stack: Stack) -> dict[str, str]:
    keys = [
        {"name": "analyst", "role": "predict", "sha256": hash_key(ANALYST)},
    ]
    return {**stack.env, "IRISQ_API_KEYS": json.dumps(keys), "IRISQ_SCORING_CALLER": "pipelines"}


@pytest.fixture(scope="module")
def keyed_url(stack: Stack, keyed_env: dict[str, str]) -> Iterator[str]:
    with api_server(keyed_env, stack.logs / "api-keyed-mlflow.log") as url:
        yield url


@pytest.fixture(scope="module")
def listener_url(stack: Stack, keyed_env: dict[str, str]) -> Iterator[str]:
    with scoring_server(keyed_env, stack.logs / "scoring-listener.log") as url:
        yield url


def _scoring_client(url: str) -> ScoringServerClient:
    address = urlparse(url)
    client = ScoringServerClient(address.hostname, address.port)  # type: ignore[no-untyped-call]
    client.wait_server_ready(timeout=60)  # type: ignore[no-untyped-call]
    return client


def test_the_scoring_client_cannot_send_a_key_so_the_keyed_api_refuses_it(keyed_url: str) -> None:
    client = _scoring_client(keyed_url)  # /ping is open: it is a readiness probe
    with pytest.raises(Exception, match="error code 401"):
        client.invoke(FLOWERS)


def test_the_scoring_client_scores_through_the_keyless_listener(
    stack: Stack, listener_url: str
) -> None:
    client = _scoring_client(listener_url)
    kept = OwnerKeys("pipelines").jobs
    with redis.Redis.from_url(stack.settings.redis_url) as store:
        before = store.zcard(kept)

        answer = client.invoke(FLOWERS)

        # Its jobs count under the listener's caller, as any key's do (rate, quotas, owner).
        assert store.zcard(kept) == before + 1
    assert answer.get_predictions().iloc[:, 0].tolist() == SPECIES


def test_the_listener_serves_the_scoring_protocol_and_nothing_else(listener_url: str) -> None:
    for method, path in [
        ("GET", "/v1/models"),
        ("POST", "/v1/training"),
        ("POST", "/v1/predictions"),
        ("GET", "/v1/me"),
    ]:
        answer = httpx.request(method, f"{listener_url}{path}", json={})
        assert answer.status_code == 404, (method, path, answer.text)
    paths = set(httpx.get(f"{listener_url}/openapi.json").json()["paths"])
    assert paths == {
        "/healthz",
        "/readyz",
        "/ping",
        "/health",
        "/version",
        "/invocations",
        "/endpoints/{endpoint}/invocations",
    }


def test_the_listener_is_off_unless_configured(stack: Stack) -> None:
    with pytest.raises(ScoringListenerOffError, match="IRISQ_SCORING_PORT"):
        create_scoring_app(stack.settings.model_copy(update={"scoring_port": None}))


def test_mlflows_deployments_client_sends_its_token_as_the_key(
    stack: Stack, keyed_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = get_deploy_client(keyed_url)  # type: ignore[no-untyped-call]
    inputs = {"dataframe_split": json.loads(FLOWERS.to_json(orient="split", index=False))}
    endpoint = stack.settings.model_name

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    with pytest.raises(HTTPError, match="401") as refused:
        client.predict(endpoint=endpoint, inputs=inputs)
    assert '"error_code":"UNAUTHENTICATED"' in str(refused.value)  # as MLflow would say it

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", ANALYST)
    assert client.predict(endpoint=endpoint, inputs=inputs) == {"predictions": SPECIES}
    with pytest.raises(HTTPError, match="no endpoint 'other'"):
        client.predict(endpoint="other", inputs=inputs)
