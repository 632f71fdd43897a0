"""The MLflow model registry over its REST API: versions, the champion, promotion.

The API process must not import MLflow (its image stays small, its start fast), so it uses
the few calls it needs with plain HTTP: asynchronous, each bounded by a short timeout, so a
hung registry holds no thread and costs each caller at most that timeout.
"""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, Field

from api.problems import ServiceUnavailableError
from irisq.algorithms import Training, training_from
from irisq.model_signatures import SIGNATURE_TAG, ModelSignatures


class ModelVersion(BaseModel):
    """One registered version of the model, as training tagged it."""

    version: str
    training: Training | None = Field(
        description="The algorithm and hyperparameters it was trained with (null for a version "
        "registered outside irisq)."
    )
    metrics: dict[str, float]
    created_at: datetime
    run_id: str | None
    status: str
    is_champion: bool
    signed: bool = Field(
        description="Carries this irisq's signature: trained here, so workers will load it."
    )


class ModelList(BaseModel):
    """Every registered version, newest first, and which one is the champion."""

    name: str
    champion: str | None
    versions: list[ModelVersion]


class RegistryReader:
    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        alias: str,
        timeout_seconds: float,
        signing_secret: bytes,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=tracking_uri.rstrip("/") + "/api/2.0/mlflow/",
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=8),  # however many callers wait on a hung one
        )
        self.model_name = model_name
        self.alias = alias
        self.signatures = ModelSignatures(signing_secret)

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"the MLflow model registry cannot be reached ({type(exc).__name__})"
            ) from exc

    async def version(self, version: str) -> dict[str, Any] | None:
        """The registered version as MLflow describes it, or None when there is no such one."""
        response = await self._request(
            "GET", "model-versions/get", params={"name": self.model_name, "version": version}
        )
        if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
            return None
        self._check(response)
        found: dict[str, Any] = response.json()["model_version"]
        return found

    async def promote(self, version: str) -> None:
        """Point the champion alias at `version` (workers follow within seconds)."""
        body = {"name": self.model_name, "alias": self.alias, "version": version}
        self._check(await self._request("POST", "registered-models/alias", json=body))

    async def champion(self) -> str | None:
        """The champion's version, or None when there is none (or no model at all)."""
        response = await self._request(
            "GET", "registered-models/get", params={"name": self.model_name}
        )
        if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
            return None
        self._check(response)
        aliases = response.json()["registered_model"].get("aliases", [])
        return next((str(a["version"]) for a in aliases if a["alias"] == self.alias), None)

    async def versions(self) -> ModelList:
        champion = await self.champion()
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"filter": f"name='{self.model_name}'", "max_results": 1000}
        while True:
            response = await self._request("GET", "model-versions/search", params=params)
            self._check(response)
            page = response.json()
            found.extend(page.get("model_versions", []))
            if not page.get("next_page_token"):
                break
            params["page_token"] = page["next_page_token"]
        versions = [self._version(v, champion) for v in found]
        versions.sort(key=lambda v: int(v.version), reverse=True)
        return ModelList(name=self.model_name, champion=champion, versions=versions)

    def is_signed(self, raw: dict[str, Any]) -> bool:
        tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
        return self.signatures.signed(raw.get("run_id"), tags.get(SIGNATURE_TAG))

    def _version(self, raw: dict[str, Any], champion: str | None) -> ModelVersion:
        return _version(raw, champion, self.is_signed(raw))

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.is_error or "json" not in response.headers.get("content-type", ""):
            raise ServiceUnavailableError(
                f"the MLflow model registry answered {response.status_code}"
            )


def _version(raw: dict[str, Any], champion: str | None, signed: bool) -> ModelVersion:
    tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
    metrics = {}
    for name in ("accuracy", "f1_macro"):
        with suppress(KeyError, ValueError):  # versions registered by hand lack these tags
            metrics[name] = float(tags[f"irisq.{name}"])
    return ModelVersion(
        version=str(raw["version"]),
        training=_training(tags),
        metrics=metrics,
        created_at=datetime.fromtimestamp(int(raw["creation_timestamp"]) / 1000, UTC),
        run_id=raw.get("run_id"),
        status=raw.get("status", "UNKNOWN"),
        is_champion=str(raw["version"]) == champion,
        signed=signed,
    )


def _training(tags: dict[str, str]) -> Training | None:
    """What a version was trained with, from the tags training gave it (None if unusable)."""
    try:
        params = json.loads(tags.get("irisq.params", "{}"))
        return training_from(tags["irisq.algorithm"], params if isinstance(params, dict) else {})
    except (KeyError, ValueError):  # registered by hand, or tags edited in the MLflow UI
        return None
