"""`make run`: check ports, pick or start Redis, then let honcho run the Procfile.

honcho supervises the processes (prefixed logs, Ctrl-C stops them all); this script only
decides what to start and with which environment, then replaces itself with honcho.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from pathlib import Path
from typing import NoReturn

import redis

from devstack.processes import local_secret
from irisq.settings import Settings
from irisq.webhooks import new_secret

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
# Not 6379: a machine often runs its own Redis there, and irisq's data is kept apart.
DEFAULT_LOCAL_REDIS_PORT = 6390


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def redacted(url: str) -> str:
    """A Redis URL fit to print: any password replaced."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def redis_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def main() -> NoReturn:
    """Exit 1 naming what is in the way, or become honcho running the stack."""
    settings = Settings()
    ports = {
        "frontend": (settings.frontend_port, "IRISQ_FRONTEND_PORT"),
        "api": (settings.api_port, "IRISQ_API_PORT"),
        "mlflow": (settings.mlflow_port, "IRISQ_MLFLOW_PORT"),
    }
    processes = ["mlflow", "api", "worker-predict", "worker-train", "worker-callbacks", "frontend"]
    if settings.scoring_port is not None:  # the keyless listener: only when asked for
        ports["scoring"] = (settings.scoring_port, "IRISQ_SCORING_PORT")
        processes.insert(2, "scoring")
    env = {
        "IRISQ_API_URL": f"http://127.0.0.1:{settings.api_port}",
        "IRISQ_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{settings.mlflow_port}",
        "IRISQ_MLFLOW_UI_URL": f"http://127.0.0.1:{settings.mlflow_port}",
        "IRISQ_MLFLOW_BACKEND_STORE_URI": f"sqlite:///{VAR / 'mlflow' / 'mlflow.db'}",
        "IRISQ_MLFLOW_ARTIFACTS": str(VAR / "mlflow" / "artifacts"),
        "IRISQ_MODELS_DIR": str(ROOT / "models"),
        "IRISQ_BATCH_DIR": str(VAR / "batches"),
        "IRISQ_PREDICTION_LOG_DIR": str(VAR / "prediction-log"),
        "IRISQ_REDIS_DIR": str(VAR / "redis"),
    }
    # Signs job ids and models; API and workers must share it. Kept across runs, like var/.
    if not os.environ.get("IRISQ_SECRET_KEY"):
        env["IRISQ_SECRET_KEY"] = local_secret(VAR / "secret-key")
    # Signs callbacks; a local receiver verifies them with the same file's secret.
    if settings.webhook_secret is None:  # neither in the environment nor in .env
        env["IRISQ_WEBHOOK_SECRET"] = local_secret(VAR / "webhook-secret", make=new_secret)
    given = os.environ.get("IRISQ_REDIS_URL")
    if given and redis_reachable(given):
        print(f"irisq: using the Redis at IRISQ_REDIS_URL={redacted(given)}")
    else:
        if given:
            print(
                f"irisq: IRISQ_REDIS_URL={redacted(given)} is not reachable; starting a local Redis"
            )
        local_port = int(os.environ.get("IRISQ_LOCAL_REDIS_PORT", DEFAULT_LOCAL_REDIS_PORT))
        ports["redis"] = (local_port, "IRISQ_LOCAL_REDIS_PORT")
        password_file = VAR / "redis-password"
        password = local_secret(password_file)
        env["IRISQ_LOCAL_REDIS_PORT"] = str(local_port)
        env["IRISQ_REDIS_PASSWORD_FILE"] = str(password_file)
        env["IRISQ_REDIS_URL"] = f"redis://:{password}@127.0.0.1:{local_port}/0"
        processes.insert(0, "redis")

    taken = [
        f"  port {port} ({name}) is already in use: set {variable} to a free port"
        for name, (port, variable) in ports.items()
        if not port_is_free(port)
    ]
    if taken:
        print("irisq: cannot start, ports are taken:\n" + "\n".join(taken), file=sys.stderr)
        sys.exit(1)

    (VAR / "mlflow").mkdir(parents=True, exist_ok=True)
    (VAR / "redis").mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    # honcho runs each Procfile line through a shell: the venv's commands must be on PATH.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.setdefault("IRISQ_FRONTEND_PORT", str(settings.frontend_port))
    os.environ.setdefault("IRISQ_API_PORT", str(settings.api_port))
    os.environ.setdefault("IRISQ_API_HOST", settings.api_host)
    os.environ.setdefault("IRISQ_MLFLOW_PORT", str(settings.mlflow_port))
    os.environ.setdefault("IRISQ_SCORING_HOST", settings.scoring_host)
    print(
        f"irisq: starting {', '.join(processes)}\n"
        f"  frontend  http://127.0.0.1:{settings.frontend_port}\n"
        f"  API       http://127.0.0.1:{settings.api_port}/docs\n"
        f"  MLflow    http://127.0.0.1:{settings.mlflow_port}\n"
        + (
            f"  scoring   http://{settings.scoring_host}:{settings.scoring_port}/invocations "
            "(no key: MLflow clients)\n"
            if settings.scoring_port is not None
            else ""
        )
        + "  Ctrl-C stops everything.",
        flush=True,
    )
    honcho = str(Path(sys.executable).with_name("honcho"))
    os.chdir(ROOT)
    os.execv(honcho, [honcho, "start", "-f", str(ROOT / "Procfile"), *processes])


if __name__ == "__main__":
    main()
