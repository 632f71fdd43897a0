"""Settings shared by every service, read from `IRISQ_*` environment variables.

Past the ~250 lines we aim for because each setting carries its description and its bounds
here: one list an operator reads, which docs/operations.md follows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["predict", "admin"]


class MissingSecretError(RuntimeError):
    """IRISQ_SECRET_KEY is needed and not set."""


class ApiKey(BaseModel):
    """One API key as configured: its name, its role, and the SHA-256 of the secret.

    Keys are 256-bit random tokens, so one SHA-256 is enough to keep them safe at rest (a
    slow password hash protects guessable secrets, which these are not).
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Settings(BaseSettings):
    """Every knob has a default that works for `make run` on one machine."""

    # Errors leave out the values read: those include secrets (IRISQ_SECRET_KEY, the webhook
    # secrets, REDIS passwords in URLs), and a refused start prints its error to the logs.
    model_config = SettingsConfigDict(
        env_prefix="IRISQ_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )

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
    challenger_alias: str = Field(
        "challenger",
        description="Registry alias of the version shadow-scored beside the champion.",
    )
    shadow_share: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="Share of the champion's online rows the challenger also scores "
        "(clients always get the champion's answer).",
    )
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
        description="The folder of uploaded CSV files and their results when "
        "IRISQ_BATCH_STORAGE_URL is unset; API and workers share it.",
    )
    prediction_log_dir: Path = Field(
        Path("var/prediction-log"),
        description="Where the train worker keeps the prediction log: daily Parquet files.",
    )
    prediction_log_batch_share: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description="Share of a batch file's rows kept in the prediction log (at most "
        "10,000 a file, or a part of one).",
    )
    prediction_log_days: int = Field(
        30, ge=1, le=3660, description="Days of the prediction log kept."
    )
    prediction_log_max_bytes: int = Field(
        1024**3, ge=1024**2, description="Size of the prediction log's files at most."
    )
    batch_storage_url: str | None = Field(
        None,
        pattern=r"^(file:///\S*|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?)$",
        description="Where batch files live: `file:///folder` (unset: IRISQ_BATCH_DIR) or "
        "`s3://bucket/prefix` on S3 or any S3-compatible store; then credentials come from "
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (or the AWS SDK's other "
        "sources), and no folder needs to be shared.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+/?$",
        description="The S3-compatible server of an `s3://` batch storage (SeaweedFS, MinIO, "
        "Ceph...), e.g. `http://objectstore:8333`; unset: Amazon S3.",
    )
    batch_max_bytes: int = Field(
        100 * 1024 * 1024, gt=0, description="Largest CSV upload accepted, in bytes."
    )
    batch_max_rows: int = Field(5_000_000, gt=0, description="Most data rows in one CSV upload.")
    batch_part_bytes: int = Field(
        8 * 1024 * 1024,
        ge=4096,
        le=256 * 1024 * 1024,
        description="A larger upload is cut into parts of about this many bytes (~300,000 "
        "rows at 8 MiB), scored at once by every predict process and put back together in "
        "order; each process holds one part in memory.",
    )
    batch_parts_at_once: int = Field(
        0,
        ge=0,
        le=256,
        description="Parts of one batch queued or running at a time; 0: one per live predict "
        "process (from the workers' heartbeats). Predictions sent meanwhile wait behind at "
        "most these.",
    )
    api_host: str = Field("127.0.0.1", description="Interface the API binds to.")
    api_port: int = Field(8002, description="Port of the API (`/docs`).")
    scoring_port: int | None = Field(
        None,
        description="Port of the keyless scoring listener for MLflow clients that cannot send "
        "a key (`ScoringServerClient`); unset, there is none. For the internal network only.",
    )
    scoring_host: str = Field(
        "127.0.0.1", description="Interface the keyless scoring listener binds to."
    )
    scoring_caller: str = Field(
        "mlflow-scoring",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="The key name the scoring listener's requests count under (rate limit, "
        "quotas, owner of their jobs).",
    )
    api_url: str = Field("http://127.0.0.1:8002", description="Where the frontend finds the API.")
    frontend_port: int = Field(8001, description="Port of the Streamlit frontend.")
    mlflow_port: int = Field(8003, description="Port of the MLflow server started by `make run`.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Browser origins allowed to call the API."
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="`json`: one JSON object a line (containers, log collectors)."
    )
    access_log: Literal["summary", "all", "off"] = Field(
        "summary",
        description="The API's access log. `summary`: a line per 10 s with traffic (requests "
        "by status, p50/p99) and one per refused or failed request, at most 20 per 10 s; "
        "`all`: a line per request; `off`: none (a proxy in front keeps it).",
    )
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="JSON list of {name, role, sha256}; `python -m irisq.keys new` makes one. "
        "Empty: the API is open (refused when IRISQ_ENV=production).",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs job ids and the models irisq trains (the registry never sees it); "
        "API and workers share it. `make run` keeps one in var/secret-key. Required in "
        "production.",
    )
    rate_limit_per_second: int = Field(
        # Above what the whole stack serves on two cores (~1,200/s as `make run` starts it,
        # from one client with 32 connections): a benchmark measures the stack, not this
        # limit. What one key holds at once is bounded anyway (64 requests in flight, the
        # quotas); this stops a runaway client on a bigger deployment. Size it to yours.
        2000,
        ge=0,
        description="Requests per second allowed to each API key (0: no limit).",
    )
    request_max_bytes: int = Field(
        4 * 2**20, gt=0, description="Largest JSON body of a `/v1` submission, in bytes."
    )
    invocations_max_rows: int = Field(
        250_000,
        gt=0,
        description="Most rows in one `/invocations` body (split into jobs of 10,000 rows).",
    )
    invocations_max_bytes: int = Field(
        16 * 2**20, gt=0, description="Largest `/invocations` body, in bytes."
    )
    body_idle_timeout_seconds: float = Field(
        15, gt=0, description="A request body that sends nothing for this long gets 408."
    )
    body_min_bytes_per_second: int = Field(
        16 * 1024,
        ge=0,
        description="Slowest average upload speed accepted after the grace (408 below it).",
    )
    body_grace_seconds: float = Field(
        10,
        ge=0,
        description="How long a request body may arrive at any speed before the minimum "
        "speed applies (a slow start: a phone on a poor link, TCP ramping up).",
    )
    header_timeout_seconds: float = Field(
        10, gt=0, description="A connection must send a whole request head within this."
    )
    max_connections_per_client: int = Field(
        64, gt=0, description="Open connections allowed from one client address."
    )
    max_requests_in_flight_per_key: int = Field(
        64, gt=0, description="Requests of one API key (or open-mode client) served at once."
    )
    events_streams_per_key: int = Field(
        16,
        gt=0,
        description="Event streams (`GET /v1/jobs/{id}/events`) one API key may hold open per "
        "API process; they count among its requests in flight too.",
    )
    events_heartbeat_seconds: float = Field(
        15.0,
        gt=0,
        description="A comment line this often on a quiet event stream, so proxies keep it open.",
    )
    events_max_seconds: float = Field(
        900.0,
        gt=0,
        description="An event stream ends after this long; clients reconnect with "
        "Last-Event-ID and miss nothing (EventSource does it by itself).",
    )
    auth_failures_per_minute: int = Field(
        30, gt=0, description="Requests with a missing or wrong key from one address, then 429."
    )
    quota_jobs_in_flight: int = Field(
        1000, gt=0, description="Queued and running jobs one API key may have (429 beyond)."
    )
    quota_rows_in_flight: int = Field(
        500_000, gt=0, description="Rows of queued and running predictions one key may have."
    )
    quota_stored_bytes: int = Field(
        2 * 2**30,
        gt=0,
        description="Bytes of uploads and results one key may keep stored (429 beyond).",
    )
    quota_stored_jobs: int = Field(
        100_000,
        gt=0,
        description="Finished jobs kept per key; beyond it the oldest are removed (then 410).",
    )
    redis_admission_fraction: float = Field(
        0.8,
        gt=0,
        le=1,
        description="New work gets 503 once Redis uses this share of its maxmemory: the rest is "
        "kept for reads, cancels and for workers to finish what was accepted.",
    )
    inline_result_max_bytes: int = Field(
        16 * 1024,
        ge=0,
        description="Results larger than this are kept in a file beside batch files, not in Redis.",
    )
    registry_timeout_seconds: float = Field(
        2.0, gt=0, description="How long one call to the MLflow registry may take."
    )
    max_queue_depth: int = Field(
        10_000, gt=0, description="Submissions get 503 while this many tasks wait in a queue."
    )
    micro_batch_max_rows: int = Field(
        512,
        gt=0,
        description="Most rows in one micro-batch of predictions (one task, one model call).",
    )
    micro_batch_max_delay_ms: float = Field(
        20.0,
        ge=0,
        description="Longest a prediction waits for a free slot before it is sent anyway.",
    )
    micro_batch_slots: int = Field(
        2,
        gt=0,
        description="Micro-batches the API keeps at the predict workers at once (about one "
        "per predict process); requests arriving meanwhile form the next group.",
    )
    invocations_wait_seconds: float = Field(
        30.0,
        gt=0,
        description="How long `/invocations` holds a request for its result before a 504.",
    )
    max_attempts: int = Field(
        3, ge=1, description="Deliveries of one job before it fails (a task that kills its worker)."
    )
    storage_attempts: int = Field(
        3,
        ge=1,
        description="Tries of a batch whose storage fails mid-way (then `storage_unavailable`).",
    )
    storage_wait_seconds: float = Field(
        30,
        gt=0,
        description="How long a batch waits for its storage to answer again between tries.",
    )
    predict_time_limit_seconds: int = Field(60, gt=0, description="Hard limit of a prediction.")
    batch_time_limit_seconds: int = Field(1800, gt=0, description="Hard limit of a batch job.")
    train_time_limit_seconds: int = Field(1800, gt=0, description="Hard limit of a training.")
    visibility_timeout_seconds: int = Field(
        3900,
        gt=0,
        description="When Redis re-delivers a task no worker acknowledged (its worker died). "
        "Must exceed every hard time limit, or running tasks are delivered twice.",
    )
    reconcile_after_seconds: int = Field(
        60, gt=0, description="A job queued this long with no task in the queue is re-sent."
    )
    reconcile_every_seconds: float = Field(
        15, gt=0, description="How often a worker looks for lost jobs and expired batch files."
    )
    bootstrap_champion: bool = Field(
        True, description="A train worker trains a first model when the registry has no champion."
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="Signs callbacks (Standard Webhooks): `whsec_` and 24-64 base64-encoded "
        "bytes, from `python -m irisq.webhooks new-secret`; receivers verify with it. Unset, "
        "a `callback_url` is refused. `make run` keeps one in var/webhook-secret.",
    )
    webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="JSON object: API key name -> its own webhook secret, used instead of "
        "IRISQ_WEBHOOK_SECRET for the callbacks of that key's jobs.",
    )
    webhook_backoff_seconds: float = Field(
        10,
        gt=0,
        description="Longest wait before the second callback attempt; each retry may wait up "
        "to twice the one before (a random share of it: jitter), at most an hour.",
    )
    webhook_retry_seconds: float = Field(
        24 * 3600,
        gt=0,
        description="How long after a job ends its callback is retried (timeouts, connection "
        "errors, 408, 429, 5xx) before it is given up; the last try is at the end of it.",
    )
    webhook_timeout_seconds: float = Field(
        5, gt=0, description="How long one callback attempt may take, connecting included."
    )
    webhook_lease_seconds: float = Field(
        60,
        gt=0,
        description="A callback handed to a worker is not handed out again for this long; "
        "after it (the worker died), it is. Must exceed IRISQ_WEBHOOK_TIMEOUT_SECONDS.",
    )
    webhook_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Callback hosts (names or addresses) that production lets resolve to "
        "private, loopback or link-local addresses: receivers inside your own network.",
    )

    @property
    def longest_time_limit(self) -> int:
        return max(
            self.predict_time_limit_seconds,
            self.batch_time_limit_seconds,
            self.train_time_limit_seconds,
        )

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env != "production":
            return self
        if "*" in self.cors_origins:
            raise ValueError("IRISQ_CORS_ORIGINS='*' is refused when IRISQ_ENV=production")
        secret = self.secret_key.get_secret_value() if self.secret_key else ""
        if len(secret) < 32:
            raise ValueError(
                "IRISQ_SECRET_KEY must be set (32 characters or more) when IRISQ_ENV=production: "
                'python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        return self

    def signing_key(self) -> bytes:
        """The secret that signs job ids and models; a clear error when it is missing."""
        if self.secret_key is None or not self.secret_key.get_secret_value():
            raise MissingSecretError(
                "IRISQ_SECRET_KEY is not set: API and workers need the same secret to sign job "
                "ids and models (`make run` makes one in var/secret-key)"
            )
        return self.secret_key.get_secret_value().encode()

    def webhook_secret_for(self, owner: str | None) -> str | None:
        """The `whsec_` secret that signs the callbacks of `owner`'s jobs; None: none is set."""
        secret = self.webhook_secrets.get(owner or "") or self.webhook_secret
        return secret.get_secret_value() if secret is not None else None

    @field_validator("webhook_secret", "batch_storage_url", "s3_endpoint_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose passes `${IRISQ_WEBHOOK_SECRET:-}` and the like: empty means none is set.
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_webhooks(self) -> Settings:
        from irisq.webhooks import WebhookSecretError, secret_bytes

        named = {"IRISQ_WEBHOOK_SECRET": self.webhook_secret} | {
            f"IRISQ_WEBHOOK_SECRETS[{name!r}]": secret
            for name, secret in self.webhook_secrets.items()
        }
        for variable, secret in named.items():
            if secret is None:
                continue
            try:
                secret_bytes(secret.get_secret_value())
            except WebhookSecretError as exc:
                raise ValueError(
                    f"{variable}: {exc} (make one: python -m irisq.webhooks new-secret)"
                ) from None
        owners = {key.name for key in self.api_keys} | {self.scoring_caller}
        if self.api_keys and (unknown := sorted(set(self.webhook_secrets) - owners)):
            raise ValueError(f"IRISQ_WEBHOOK_SECRETS names keys that do not exist: {unknown}")
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError(
                "IRISQ_WEBHOOK_LEASE_SECONDS must exceed IRISQ_WEBHOOK_TIMEOUT_SECONDS: a "
                "callback would otherwise be handed out again while it is being sent"
            )
        return self

    @model_validator(mode="after")
    def _redeliver_only_dead_tasks(self) -> Settings:
        if self.visibility_timeout_seconds <= self.longest_time_limit:
            raise ValueError(
                f"IRISQ_VISIBILITY_TIMEOUT_SECONDS ({self.visibility_timeout_seconds}) must "
                f"exceed the longest task time limit ({self.longest_time_limit} s): Redis "
                "would otherwise deliver a task again while it still runs"
            )
        if len({key.name for key in self.api_keys}) != len(self.api_keys):
            raise ValueError("IRISQ_API_KEYS: two keys share a name; names must be unique")
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
