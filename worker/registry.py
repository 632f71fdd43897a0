"""Talking to the MLflow model registry: resolve the champion, load versions, set the alias."""

from __future__ import annotations

import os
from typing import Any

# MLflow defaults that do not suit a worker, set before MLflow reads them (env still wins):
# - it would copy this project's uv.lock (every service's dependencies) into each model;
# - its HTTP client retries a down server for about two minutes, holding jobs that long.
os.environ.setdefault("MLFLOW_LOG_UV_FILES", "false")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

import mlflow
import mlflow.sklearn  # load() needs it; importing here also loads it before workers fork
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from irisq.settings import Settings


class ModelNotFoundError(LookupError):
    """The requested model version, or a champion, does not exist in the registry."""


def _is_missing(exc: MlflowException) -> bool:
    return bool(exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST))


class Registry:
    """The `iris` registered model in MLflow, as the worker uses it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.alias = settings.champion_alias
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_tracking_uri)
        self.client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)

    def champion_version(self) -> str | None:
        """The version the champion alias points at, or None when there is no champion."""
        # Read the alias off the registered model: asking for a missing alias directly is an
        # INVALID_PARAMETER_VALUE error, indistinguishable from a real bad request.
        try:
            aliases = self.client.get_registered_model(self.name).aliases
        except MlflowException as exc:
            if _is_missing(exc):
                return None
            raise
        version = aliases.get(self.alias)
        return None if version is None else str(version)

    def require_version(self, version: str) -> None:
        """Raise ModelNotFoundError unless `version` is registered."""
        try:
            self.client.get_model_version(self.name, version)
        except MlflowException as exc:
            if _is_missing(exc):
                raise ModelNotFoundError(
                    f"model '{self.name}' has no version {version}; GET /v1/models lists them"
                ) from None
            raise

    def load(self, version: str) -> Any:
        """The scikit-learn estimator registered as `version`."""
        return mlflow.sklearn.load_model(f"models:/{self.name}/{version}")

    def promote(self, version: str) -> None:
        """Point the champion alias at `version`."""
        self.client.set_registered_model_alias(self.name, self.alias, version)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value)
