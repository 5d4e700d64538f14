"""Configuration: one settings object read from the environment (and an optional `.env`)."""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Literal, NoReturn

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every environment variable of DESIGN.md's contract, by its snake_case name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = "postgresql+psycopg2://postgres@127.0.0.1:5432/callsync"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = Field(
        default="", description="prefix of the broker's keys: deployments sharing one Redis"
    )
    encryption_key: SecretStr = Field(min_length=16)
    jwt_secret: SecretStr = Field(min_length=16)
    service_token: SecretStr | None = Field(default=None, min_length=16)
    # Supabase Auth's asymmetric signing keys (ES256/RS256): its project's JWKS, e.g.
    # https://<project>.supabase.co/auth/v1/.well-known/jwks.json. HS256 tokens use JWT_SECRET.
    supabase_jwks_url: str | None = None
    jwks_cache_seconds: int = Field(default=600, ge=1, description="how long the JWKS is reused")
    jwt_issuer: str | None = Field(default=None, description="the `iss` tokens must carry, if set")
    cors_allow_origins: str = Field(
        default="", description="comma-separated origins of a browser front end calling the API"
    )

    ultravox_api_base_url: str = "https://api.ultravox.ai"
    ultravox_timeout_seconds: float = Field(default=30.0, gt=0)  # DESIGN.md: 30 s
    elevenlabs_api_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_api_key: SecretStr | None = None
    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None
    salesforce_login_url: str = "https://login.salesforce.com"  # or test.salesforce.com
    bubble_api_base_url: str | None = None
    bubble_api_token: SecretStr | None = None
    bubble_rate_limit_per_minute: int = Field(
        default=1000,
        ge=1,
        description="requests per minute to one Bubble app, all workers together",
    )

    # The seeds' tunables (seed 003).
    max_records_per_sync: int = Field(default=2000, ge=1)
    conversation_sync_lookback_hours: int = Field(default=48, ge=1)
    conversation_sync_batch_limit: int = Field(default=10, ge=1)
    conversation_sync_events_batch_size: int = Field(default=50, ge=1)

    # cleanup: completed queue rows and logs older than this are deleted, daily.
    retention_days: int = Field(default=30, ge=1)
    cleanup_batch_size: int = Field(default=5000, ge=1)

    # Queue mechanics.
    lease_seconds: int = Field(
        default=300, ge=5, description="a claim older than this is re-claimable"
    )
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    # Webhook ingest and the webhook queue.
    webhook_timestamp_tolerance_seconds: int = Field(
        default=300, ge=1, description="how far a webhook's timestamp may be from now, either way"
    )
    webhook_secret_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long an agency's webhook secrets are reused"
    )
    trusted_proxies: str = Field(
        default="", description="comma-separated proxy addresses whose X-Forwarded-For is believed"
    )
    webhook_batch_size: int = Field(default=200, ge=1, le=5000)
    # A few connections keep PostgreSQL's commits flowing; more make its backends contend for
    # the CPU and stretch the tail: on 2 cores, 4 gave p99 33 ms where 10 gave 116 ms.
    webhook_db_connections: int = Field(
        default=4, ge=1, le=100, description="connections each API process inserts webhooks over"
    )

    # Enrichment: transcripts and analyses of ended calls.
    enrichment_batch_size: int = Field(default=200, ge=1, le=5000)
    enrichment_concurrency: int = Field(
        default=100, ge=1, le=1000, description="provider requests in flight per drain"
    )
    analyzer: Literal["rules", "openai"] = "rules"
    llm_base_url: str = "https://api.openai.com/v1"
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=60.0, gt=0)

    # Outbound campaigns.
    dial_concurrency: int = Field(
        default=5, ge=1, le=100, description="calls placed at once per campaign run"
    )
    dial_lease_seconds: int = Field(
        default=600, ge=60, description="a reserved dial not recorded after this is over"
    )

    # Provider calls: tenacity attempts per request, then the task's own retries.
    http_retry_attempts: int = Field(default=4, ge=1)
    http_retry_initial_seconds: float = Field(default=1.0, ge=0)
    http_retry_max_seconds: float = Field(default=30.0, ge=0)
    task_retry_seconds: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _llm_key_when_used(self) -> Settings:
        if self.analyzer == "openai" and self.llm_api_key is None:
            raise ValueError("ANALYZER=openai needs LLM_API_KEY")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()  # required fields come from the environment


def describe_error(error: ValidationError) -> str:
    """One line naming the first bad variable, e.g. `ENCRYPTION_KEY: Field required`."""
    first = error.errors()[0]
    name = ".".join(str(part) for part in first["loc"]).upper() or "configuration"
    return f"invalid configuration: {name}: {first['msg']}"


def load_or_exit() -> Settings:
    """Settings for a process entry point: a bad value ends the process with one line."""
    try:
        return get_settings()
    except ValidationError as error:
        fail(describe_error(error))


def fail(message: str) -> NoReturn:
    print(f"callsync: {message}", file=sys.stderr)  # noqa: T201
    raise SystemExit(2)
