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
from urllib.parse import quote

import httpx
from pydantic import BaseModel, Field

from api.problems import ServiceUnavailableError
from irisq.algorithms import Training, training_from
from irisq.model_signatures import SIGNATURE_TAG, ModelSignatures
from irisq.schema import Aliases
from irisq.shadow import ShadowComparison


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
    run_url: str | None = Field(description="The training run in the MLflow UI.")
    description: str | None = Field(
        description="What the quality gate decided for it, and why (as training wrote it)."
    )
    status: str
    is_champion: bool
    is_challenger: bool
    signed: bool = Field(
        description="Carries this irisq's signature: trained here, so workers will load it."
    )


class ModelList(BaseModel):
    """Every registered version, newest first, which one is the champion and which the
    challenger, and how the challenger compares with the champion on live traffic."""

    name: str
    champion: str | None
    challenger: str | None
    shadow: ShadowComparison | None = Field(
        description="The challenger scored beside the current champion (null: no challenger)."
    )
    versions: list[ModelVersion]


class RegistryReader:
    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        alias: str,
        timeout_seconds: float,
        signing_secret: bytes,
        challenger_alias: str,
        ui_url: str,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=tracking_uri.rstrip("/") + "/api/2.0/mlflow/",
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=8),  # however many callers wait on a hung one
        )
        self.model_name = model_name
        self.alias = alias
        self.challenger_alias = challenger_alias
        self.ui_url = ui_url.rstrip("/")
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

    async def described(self, version: str) -> ModelVersion | None:
        """One version as `versions` lists it, or None when there is no such one."""
        raw = await self.version(version)
        return None if raw is None else self._version(raw, await self.aliases())

    async def promote(self, version: str) -> None:
        """Point the champion alias at `version` (workers follow within seconds)."""
        await self._set_alias(self.alias, version)

    async def make_challenger(self, version: str) -> None:
        """Point the challenger alias at `version` (workers shadow-score it within seconds)."""
        await self._set_alias(self.challenger_alias, version)

    async def clear_challenger(self) -> None:
        params = {"name": self.model_name, "alias": self.challenger_alias}
        response = await self._request("DELETE", "registered-models/alias", json=params)
        if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
            return  # already none (or no model at all): cleared all the same
        self._check(response)

    async def _set_alias(self, alias: str, version: str) -> None:
        body = {"name": self.model_name, "alias": alias, "version": version}
        self._check(await self._request("POST", "registered-models/alias", json=body))

    async def champion(self) -> str | None:
        """The champion's version, or None when there is none (or no model at all)."""
        return (await self.aliases()).champion

    async def aliases(self) -> Aliases:
        """The versions the champion and challenger aliases point at (None: unset)."""
        response = await self._request(
            "GET", "registered-models/get", params={"name": self.model_name}
        )
        if response.status_code == 404 and "RESOURCE_DOES_NOT_EXIST" in response.text:
            return Aliases(None, None)
        self._check(response)
        found = {
            a["alias"]: str(a["version"])
            for a in response.json()["registered_model"].get("aliases", [])
        }
        return Aliases(found.get(self.alias), found.get(self.challenger_alias))

    async def versions(self) -> ModelList:
        """Every version and the aliases (`shadow` is for the caller to fill from Redis)."""
        aliases = await self.aliases()
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
        versions = [self._version(v, aliases) for v in found]
        versions.sort(key=lambda v: int(v.version), reverse=True)
        return ModelList(
            name=self.model_name,
            champion=aliases.champion,
            challenger=aliases.challenger,
            shadow=None,
            versions=versions,
        )

    def is_signed(self, raw: dict[str, Any]) -> bool:
        tags = {t["key"]: t["value"] for t in raw.get("tags", [])}
        return self.signatures.signed(raw.get("run_id"), tags.get(SIGNATURE_TAG))

    def _version(self, raw: dict[str, Any], aliases: Aliases) -> ModelVersion:
        run_id = raw.get("run_id")
        # Quoted: the id is the registry's word, and the link ends up in pages' Markdown.
        run_url = f"{self.ui_url}/#/runs/{quote(str(run_id), safe='')}" if run_id else None
        return _version(raw, aliases, self.is_signed(raw), run_url)

    @staticmethod
    def _check(response: httpx.Response) -> None:
        if response.is_error or "json" not in response.headers.get("content-type", ""):
            raise ServiceUnavailableError(
                f"the MLflow model registry answered {response.status_code}"
            )


def _version(
    raw: dict[str, Any], aliases: Aliases, signed: bool, run_url: str | None
) -> ModelVersion:
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
        run_url=run_url,
        description=raw.get("description") or None,
        status=raw.get("status", "UNKNOWN"),
        is_champion=str(raw["version"]) == aliases.champion,
        is_challenger=str(raw["version"]) == aliases.challenger,
        signed=signed,
    )


def _training(tags: dict[str, str]) -> Training | None:
    """What a version was trained with, from the tags training gave it (None if unusable)."""
    try:
        params = json.loads(tags.get("irisq.params", "{}"))
        return training_from(tags["irisq.algorithm"], params if isinstance(params, dict) else {})
    except (KeyError, ValueError):  # registered by hand, or tags edited in the MLflow UI
        return None
