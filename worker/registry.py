"""Talking to the MLflow model registry: resolve the champion, load versions, set the alias."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn  # training logs with it; imported here, before workers fork
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from irisq.schema import Aliases
from irisq.settings import Settings
from worker.errors import ExpectedJobError
from worker.mlflow_env import configure_mlflow
from worker.trust import SIGNATURE_TAG, ModelSigner, load_estimator

logger = logging.getLogger(__name__)


class ModelNotFoundError(ExpectedJobError, LookupError):
    """The requested model version, or a champion, does not exist in the registry."""

    error_type = "model_not_found"


class RegistryUnavailableError(ExpectedJobError, ConnectionError):
    """The MLflow server cannot be reached (down, or not answering)."""

    error_type = "registry_unavailable"


def _is_missing(exc: MlflowException) -> bool:
    return bool(exc.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST))


def is_unreachable(exc: BaseException) -> bool:
    """MLflow wraps a failed connection in a generic MlflowException; look at the cause."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.ConnectionError | requests.Timeout | ConnectionError):
            return True
        if isinstance(seen, MlflowException) and "Max retries exceeded" in seen.message:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextmanager
def registry_errors(uri: str, doing: str) -> Iterator[None]:
    """Turn "MLflow is unreachable" into RegistryUnavailableError, with what failed."""
    try:
        yield
    except RegistryUnavailableError:
        raise
    except Exception as exc:
        if is_unreachable(exc):
            logger.warning("the MLflow server at %s cannot be reached: %s failed", uri, doing)
            raise RegistryUnavailableError(
                # Not its address (the log has it): this message is shown to clients.
                f"the MLflow registry cannot be reached, so {doing} failed; "
                "try again when it is back"
            ) from exc
        raise


class Registry:
    """The `iris` registered model in MLflow, as the worker uses it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.model_name
        self.alias = settings.champion_alias
        self.challenger_alias = settings.challenger_alias
        # Local copies of the versions this machine has loaded, and the last champion seen:
        # what inference falls back on while the MLflow server is down.
        self.copies = settings.models_dir / ".registry" / self.name
        # Whoever uses MLflow through irisq makes a Registry first: a worker, `make train`, a
        # test or a benchmark. A worker has already configured it (worker.celery_app).
        configure_mlflow()
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_tracking_uri)
        self.client = MlflowClient(settings.mlflow_tracking_uri, settings.mlflow_tracking_uri)
        self.signer = ModelSigner(settings.signing_key())

    def champion_version(self) -> str | None:
        """The version the champion alias points at, or None when there is no champion."""
        return self.aliased()[0]

    def aliased(self) -> Aliases:
        """The champion and the challenger, and when the registered model was made."""
        # Read the aliases off the registered model: asking for a missing alias directly is
        # an INVALID_PARAMETER_VALUE error, indistinguishable from a real bad request.
        try:
            with registry_errors(self.settings.mlflow_tracking_uri, "resolving the champion"):
                model = self.client.get_registered_model(self.name)
        except MlflowException as exc:
            if _is_missing(exc):
                return Aliases(None, None)
            raise
        aliases = model.aliases
        champion, challenger = aliases.get(self.alias), aliases.get(self.challenger_alias)
        if champion is not None:
            self._remember_champion(str(champion))
        return Aliases(
            None if champion is None else str(champion),
            None if challenger is None else str(challenger),
            model.creation_timestamp,
        )

    def last_known_champion(self) -> str | None:
        """The champion this machine last resolved, for when the registry is unreachable."""
        pointer = self.copies / "champion"
        return pointer.read_text().strip() if pointer.exists() else None

    def has_copy(self, version: str) -> bool:
        return (self.copies / version / "MLmodel").exists()

    def is_trusted(self, version: str) -> bool:
        """Whether the version carries this irisq's signature (its file is checked on load)."""
        with registry_errors(self.settings.mlflow_tracking_uri, f"reading version {version}"):
            found = self.client.get_model_version(self.name, version)
        return self.signer.signed(found.run_id, found.tags.get(SIGNATURE_TAG))

    def _remember_champion(self, version: str) -> None:
        pointer = self.copies / "champion"
        try:
            if pointer.exists() and pointer.read_text().strip() == version:
                return
            self.copies.mkdir(parents=True, exist_ok=True)
            temporary = pointer.with_name(f"champion.{os.getpid()}")
            temporary.write_text(version)
            temporary.replace(pointer)  # atomic: a reader sees the old or the new version
        except OSError as exc:  # a read-only models dir only costs the fallback
            logger.warning("could not remember the champion locally: %s", exc)

    def require_version(self, version: str) -> Any:
        """The registered `version` (its run id and tags); ModelNotFoundError if there is none."""
        try:
            with registry_errors(self.settings.mlflow_tracking_uri, f"finding version {version}"):
                return self.client.get_model_version(self.name, version)
        except MlflowException as exc:
            if _is_missing(exc):
                raise ModelNotFoundError(
                    f"model '{self.name}' has no version {version}; GET /v1/models lists them"
                ) from None
            raise

    def load(self, version: str) -> Any:
        """The scikit-learn estimator registered as `version`, from the local copy if any.

        A registered version never changes, so the copy is downloaded once and reused; it is
        what lets inference go on while the MLflow server is down. Both are checked against
        the version's signature (worker.trust) every time, before anything is deserialised.
        """
        copy = self.copies / version
        if self.has_copy(version) and not self._copy_is_current(version, copy):
            shutil.rmtree(copy, ignore_errors=True)
        if not self.has_copy(version):
            self._download(version, copy)
        self.signer.check_copy(self.name, version, copy)
        return load_estimator(copy)

    def _copy_is_current(self, version: str, copy: Path) -> bool:
        """Whether the copy is of the version the registry holds now. Version numbers start
        again at 1 in a new registry (`make clean-var`): a copy from an old one must not
        serve. While the registry cannot be reached, the copy is what there is."""
        try:
            registered = self.require_version(version)
        except RegistryUnavailableError:
            return True
        except ModelNotFoundError:
            logger.warning("version %s is not in the registry: its copy is dropped", version)
            shutil.rmtree(copy, ignore_errors=True)
            raise
        return bool(self.signer.copy_run_id(copy) == registered.run_id)

    def _download(self, version: str, copy: Path) -> None:
        registered = self.require_version(version)
        signature = registered.tags.get(SIGNATURE_TAG)
        if not self.signer.signed(registered.run_id, signature):  # before any download
            self.signer.check(self.name, version, registered.run_id, signature, copy)
        self.copies.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.copies))
        try:
            with registry_errors(self.settings.mlflow_tracking_uri, f"loading version {version}"):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{self.name}/{version}", dst_path=str(staging)
                )
            self.signer.check(self.name, version, registered.run_id, signature, staging)
            self.signer.remember(staging, registered.run_id, signature)
            try:
                staging.rename(copy)  # atomic; another process may have won the race
            except OSError:
                if not self.has_copy(version):
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def promote(self, version: str) -> None:
        """Point the champion alias at `version`."""
        with registry_errors(self.settings.mlflow_tracking_uri, "promoting the new version"):
            self.client.set_registered_model_alias(self.name, self.alias, version)

    def make_challenger(self, version: str) -> None:
        """Point the challenger alias at `version`: shadow-scored beside the champion."""
        with registry_errors(self.settings.mlflow_tracking_uri, "setting the challenger"):
            self.client.set_registered_model_alias(self.name, self.challenger_alias, version)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        with registry_errors(self.settings.mlflow_tracking_uri, "tagging the new version"):
            for key, value in tags.items():
                self.client.set_model_version_tag(self.name, version, key, value)

    def describe_version(self, version: str, description: str) -> None:
        with registry_errors(self.settings.mlflow_tracking_uri, "describing the new version"):
            self.client.update_model_version(self.name, version, description=description)

    def version_tags(self, version: str) -> dict[str, str]:
        with registry_errors(self.settings.mlflow_tracking_uri, "reading the version's tags"):
            return dict(self.client.get_model_version(self.name, version).tags)

    def version_of_job(self, job_id: str) -> str | None:
        """The version a training job already registered (a re-delivered job looks first)."""
        with registry_errors(self.settings.mlflow_tracking_uri, "looking for this job's version"):
            found = self.client.search_model_versions(
                f"name = '{self.name}' and tags.`irisq.job_id` = '{job_id}'"
            )
        return str(found[0].version) if found else None
