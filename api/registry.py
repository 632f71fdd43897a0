"""The MLflow model registry over its REST API: versions, the champion, promotion.

The API process must not import MLflow (its image stays small, its start fast), so it uses
the few calls it needs with plain HTTP.
"""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel

from api.problems import ServiceUnavailableError

REGISTRY_TIMEOUT_SECONDS = 3.0


class ModelVersion(BaseModel):
    """One registered version of the model, as training tagged it."""

    version: str
    algorithm: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    created_at: datetime
    run_id: str | None
    status: str
    is_champion: bool


class ModelList(BaseModel):
    """Every registered version, newest first, and which one is the champion."""

    name: str
    champion: str | None
    versions: list[ModelVersion]


class RegistryReader:
    def __init__(self, tracking_uri: str, model_name: str, alias: str) -> None:
        self._http = httpx.Client(
            base_url=tracking_uri.rstrip("/") + "/api/2.0/mlflow/",
            timeout=REGISTRY_TIMEOUT_SECONDS,
        )
        self.model_name = model_name
        self.alias = alias

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        return self._request("GET", path, params=params)

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self._request("POST", path, json=body)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(
                f"the MLflow model registry cannot be reached: {exc}"
            ) from exc

    def has_version(self, version: str) -> bool:
        response = self._get("model-versions/get", {"name": self.model_name, "version": version})
        if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
            return False
        self._check(response)
        return True

    def promote(self, version: str) -> None:
        """Point the champion alias at `version` (workers follow within seconds)."""
        body = {"name": self.model_name, "alias": self.alias, "version": version}
        self._check(self._post("registered-models/alias", body))

    def champion(self) -> str | None:
        """The champion's version, or None when there is none (or no model at all)."""
        response = self._get("registered-models/get", {"name": self.model_name})
        if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
            return None
        self._check(response)
        aliases = response.json()["registered_model"].get("aliases", [])
        return next((str(a["version"]) for a in aliases if a["alias"] == self.alias), None)

    def versions(self) -> ModelList:
        champion = self.champion()
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"filter": f"name='{self.model_name}'", "max_results": 1000}
        while True:
            response = self._get("model-versions/search", params)
            self._check(response)
            page = response.json()
            found.extend(page.get("model_versions", []))
            if not page.get("next_page_token"):
                break
            params["page_token"] = page["next_page_token"]
        versions = [_version(v, champion) for v in found]
        versions.sort(key=lambda v: int(v.version), reverse=True)
        return ModelList(name=self.model_name, champion=champion, versions=versions)

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.is_error or "json" not in response.headers.get("content-type", ""):
            raise ServiceUnavailableError(
                f"the MLflow model registry answered {response.status_code}: {response.text[:200]}"
            )


def _version(raw: dict[str, Any], champion: str | None) -> ModelVersion:
    tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
    metrics = {}
    for name in ("accuracy", "f1_macro"):
        with suppress(KeyError, ValueError):  # versions registered by hand lack these tags
            metrics[name] = float(tags[f"irisq.{name}"])
    try:
        params = json.loads(tags.get("irisq.params", "{}"))
    except ValueError:
        params = {}
    return ModelVersion(
        version=str(raw["version"]),
        algorithm=tags.get("irisq.algorithm"),
        params=params if isinstance(params, dict) else {},
        metrics=metrics,
        created_at=datetime.fromtimestamp(int(raw["creation_timestamp"]) / 1000, UTC),
        run_id=raw.get("run_id"),
        status=raw.get("status", "UNKNOWN"),
        is_champion=str(raw["version"]) == champion,
    )
