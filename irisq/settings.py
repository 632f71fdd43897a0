"""Settings shared by every service, read from `IRISQ_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob has a default that works for `make run` on one machine."""

    model_config = SettingsConfigDict(env_prefix="IRISQ_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = Field(
        "development", description="`production` refuses settings that are only safe locally."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis for the Celery queues and job records."
    )
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:8003", description="MLflow tracking server and model registry."
    )
    mlflow_ui_url: str = Field(
        "http://127.0.0.1:8003", description="Where a browser reaches the MLflow UI (links)."
    )
    model_name: str = Field("iris", description="Registered model name in MLflow.")
    champion_alias: str = Field("champion", description="Registry alias of the serving model.")
    experiment_name: str = Field("iris", description="MLflow experiment for training runs.")
    models_dir: Path = Field(Path("models"), description="Where trained models are exported.")
    champion_refresh_seconds: float = Field(
        2.0,
        ge=0,
        description="How long a worker trusts its resolved champion before asking the registry "
        "again; resolving costs one registry round trip, so not on every job.",
    )
    job_ttl_seconds: int = Field(
        7 * 24 * 3600, gt=0, description="How long job records and results are kept."
    )
    batch_dir: Path = Field(
        Path("var/batches"),
        description="Where uploaded CSV files and their results live; API and workers share it.",
    )
    batch_max_bytes: int = Field(
        100 * 1024 * 1024, gt=0, description="Largest CSV upload accepted, in bytes."
    )
    batch_max_rows: int = Field(5_000_000, gt=0, description="Most data rows in one CSV upload.")
    api_host: str = Field("127.0.0.1", description="Interface the API binds to.")
    api_port: int = Field(8002, description="Port of the API (`/docs`).")
    api_url: str = Field("http://127.0.0.1:8002", description="Where the frontend finds the API.")
    frontend_port: int = Field(8001, description="Port of the Streamlit frontend.")
    mlflow_port: int = Field(8003, description="Port of the MLflow server started by `make run`.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object a line (containers, log collectors)."
    )
    bootstrap_champion: bool = Field(
        True, description="A train worker trains a first model when the registry has no champion."
    )

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env == "production" and "*" in self.cors_origins:
            raise ValueError("IRISQ_CORS_ORIGINS='*' is refused when IRISQ_ENV=production")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
