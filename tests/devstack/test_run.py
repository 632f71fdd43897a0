"""`make run`'s preflight: a taken port is named with the variable that moves it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from devstack.processes import ROOT, free_port


def test_a_taken_port_names_the_port_and_its_variable(redis_url: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = {
            **os.environ,
            "IRISQ_API_PORT": str(taken),
            "IRISQ_FRONTEND_PORT": str(free_port()),
            "IRISQ_MLFLOW_PORT": str(free_port()),
            "IRISQ_REDIS_URL": redis_url,
        }
        done = subprocess.run(
            [sys.executable, "-m", "devstack.run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 1
    assert f"port {taken} (api) is already in use: set IRISQ_API_PORT" in done.stderr
    password = redis_url.split("//:", 1)[1].split("@", 1)[0]
    port = redis_url.rsplit(":", 1)[1]
    assert f"using the Redis at IRISQ_REDIS_URL=redis://***@127.0.0.1:{port}" in done.stdout
    assert password not in done.stdout + done.stderr  # the password is never printed
