"""Liveness, readiness, and what the API says when its backing services are away."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from api import admission
from api.main import create_app
from devstack.processes import free_port, redis_server, wait_for
from irisq.settings import Settings
from tests.support.stack import SETOSA, Stack


def test_healthz_answers(stack: Stack) -> None:
    assert stack.api.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_with_every_part(stack: Stack) -> None:
    response = stack.api.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert set(body["checks"]) == {
        "redis",
        "predict_workers",
        "train_workers",
        "callbacks_workers",
        "registry",
        "champion",
        "batch_storage",
    }
    # Anyone may read this: how many workers, never their host names.
    assert body["checks"]["predict_workers"]["detail"] == "1 alive"
    assert body["checks"]["champion"]["detail"].startswith("version ")
    assert body["checks"]["batch_storage"] == {"ok": True, "detail": "writable"}
    assert body["missing"] == []  # the stack runs no callbacks worker: reported, not required


def test_readyz_names_what_is_missing(redis_url: str) -> None:
    # A Redis database no worker uses, and no MLflow server at all.
    empty_db = redis_url.rsplit("/", 1)[0] + "/7"
    settings = Settings(redis_url=empty_db, mlflow_tracking_uri=f"http://127.0.0.1:{free_port()}")
    with TestClient(create_app(settings)) as api:
        response = api.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is True
    assert checks["predict_workers"] == {
        "ok": False,
        "detail": "no worker consumes the 'predict' queue",
    }
    assert checks["registry"]["ok"] is False
    assert "cannot be reached" in checks["registry"]["detail"]
    assert checks["champion"] == {
        "ok": False,
        "detail": "unknown: the registry cannot be reached",
    }


def test_a_submission_while_redis_is_down_is_503_quickly() -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(settings)) as api:
        started = time.monotonic()
        response = api.post("/v1/predictions", json={"rows": [SETOSA]})
        elapsed = time.monotonic() - started
        readiness = api.get("/readyz")

    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()
    assert "Redis" in response.json()["detail"]
    assert elapsed < 2, f"took {elapsed:.2f} s"
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["redis"]["ok"] is False


def test_models_lists_versions_newest_first_with_one_champion(stack: Stack) -> None:
    body = stack.api.get("/v1/models").json()

    versions = [int(v["version"]) for v in body["versions"]]
    assert versions == sorted(versions, reverse=True)
    assert [v["version"] for v in body["versions"] if v["is_champion"]] == [body["champion"]]
    first = body["versions"][-1]
    assert first["training"]["algorithm"] == "logistic_regression"  # the bootstrapped champion
    assert set(first["metrics"]) == {"accuracy", "f1_macro"}


def test_readyz_warns_of_a_redis_that_evicts_or_is_past_admission(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Both leave the API ready (jobs can still be read, canceled, deleted), and both are
    what an operator must hear of: an evicting Redis drops job records without a word."""
    no_registry = f"http://127.0.0.1:{free_port()}"
    with redis_server(tmp_path / "redis", maxmemory="16mb") as url:
        client = redis.Redis.from_url(url)
        with TestClient(
            create_app(Settings(redis_url=url, mlflow_tracking_uri=no_registry))
        ) as api:
            assert not _memory_warnings(api)  # noeviction, nearly empty

            client.config_set("maxmemory-policy", "allkeys-lru")
            evicting = wait_for(lambda: _memory_warnings(api), 10, "a warning of eviction")
            client.config_set("maxmemory-policy", "noeviction")
            client.config_set("maxmemory", int(client.info("memory")["used_memory"]) // 2)
            closed = wait_for(
                lambda: [w for w in _memory_warnings(api) if "refused" in w],
                10,
                "a warning that new jobs are refused",
            )
            readiness = api.get("/readyz").json()
        client.close()

    assert evicting == [admission.EVICTS]
    assert closed == [admission.CLOSED.format(share=0.8)]
    assert "refused" in closed[0]
    assert readiness["checks"]["redis"] == {"ok": True, "detail": "reachable"}
    logged = [r.getMessage() for r in caplog.records if "evicts" in r.getMessage()]
    assert logged == [f"{admission.EVICTS} (maxmemory-policy allkeys-lru)"]  # once, by name


def _memory_warnings(api: TestClient) -> list[str]:
    warnings: list[str] = api.get("/readyz").json()["warnings"]
    return [w for w in warnings if "Redis" in w and "maxmemory" in w]
