"""Train from a shell, through the same code as `POST /v1/training`:

python -m worker.train_cli --algorithm svc --param C=2.0 --param kernel=linear
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, get_args

from pydantic import SecretStr, ValidationError

from irisq.algorithms import DEFAULT_ALGORITHM, Algorithm, TrainingRequest
from irisq.settings import get_settings


def _param(text: str) -> tuple[str, Any]:
    """`C=2` → ("C", 2); values are read as JSON when they parse (numbers, null), else text."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train, register and gate an Iris model.")
    parser.add_argument("--algorithm", default=DEFAULT_ALGORITHM, choices=get_args(Algorithm))
    parser.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    try:
        request = TrainingRequest.model_validate(
            {"algorithm": args.algorithm, "params": dict(args.param)}
        )
    except ValidationError as exc:
        print(f"invalid training request: {exc}", file=sys.stderr)
        return 2

    from worker.registry import Registry  # heavy imports only once the arguments are good
    from worker.training import train_and_register

    settings = get_settings()
    # What `make run` signs with, when the shell running `make train` does not say.
    local_secret = Path(__file__).resolve().parents[1] / "var" / "secret-key"
    if settings.secret_key is None and local_secret.exists():
        settings = settings.model_copy(
            update={"secret_key": SecretStr(local_secret.read_text().strip())}
        )
    try:
        Registry(settings).champion_version()
    except Exception as exc:
        print(
            f"the MLflow registry at {settings.mlflow_tracking_uri} cannot be reached ({exc}); "
            "start the stack with `make run` or set IRISQ_MLFLOW_TRACKING_URI",
            file=sys.stderr,
        )
        return 1

    def report(progress: float, stage: str) -> None:
        print(f"[{progress:4.0%}] {stage}", flush=True)

    result = train_and_register(request.algorithm, request.params, settings, report=report)
    print(result.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
