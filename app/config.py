"""Configuration: one settings object read from the environment (and an optional `.env`)."""

from __future__ import annotations

import json
import sys
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, NoReturn

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def json_or_file(value: object) -> object:
    """A JSON setting given inline, or as the path of a file holding it."""
    if not isinstance(value, str):
        return value
    source = value.strip()
    if not source:
        return {}
    if not source.startswith("{"):
        try:
            source = Path(source).read_text()
        except OSError as error:
            raise ValueError(f"cannot read {value!r}: {error.strerror}") from None
    try:
        return json.loads(source)
    except ValueError as error:
        raise ValueError(f"not valid JSON: {error}") from None


# Bubble data type -> {column of the queued row: Bubble field key}; "_id" marks the column
# holding the record's Bubble id.
BubbleFieldMap = Annotated[dict[str, dict[str, str]], NoDecode, BeforeValidator(json_or_file)]
BubbleNaturalKeys = Annotated[dict[str, str], NoDecode, BeforeValidator(json_or_file)]
UltravoxAccounts = Annotated[dict[str, list[uuid.UUID]], NoDecode, BeforeValidator(json_or_file)]


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

    ultravox_api_base_url: str = "https://api.ultravox.ai"
    ultravox_timeout_seconds: float = Field(default=30.0, gt=0)  # DESIGN.md: 30 s
    # "API Limits" (api-facts §1.1): 200 requests/s per API key, 500/s per account.
    ultravox_rate_limit_per_key: float = Field(
        default=200, gt=0, description="requests per second to Ultravox with one API key"
    )
    ultravox_rate_limit_per_account: float = Field(
        default=500, gt=0, description="requests per second of all the keys of one account"
    )
    ultravox_accounts: UltravoxAccounts = Field(
        default_factory=dict, description="account name -> the agencies whose keys it holds"
    )
    rate_headroom_percent: float = Field(
        default=5, ge=0, lt=100, description="how far below a provider's rate limit to run"
    )
    elevenlabs_api_base_url: str = "https://api.elevenlabs.io"
    elevenlabs_api_key: SecretStr | None = None
    elevenlabs_concurrency: int = Field(
        default=10, ge=1, description="ElevenLabs requests in flight at once, all workers together"
    )
    elevenlabs_slot_wait_seconds: float = Field(
        default=120,
        ge=0,
        description="how long a call to place waits for ElevenLabs' concurrency to free "
        "(a quarter of DIAL_LEASE_SECONDS at most)",
    )
    salesforce_client_id: str | None = None
    salesforce_client_secret: SecretStr | None = None
    salesforce_login_url: str = "https://login.salesforce.com"  # or test.salesforce.com
    salesforce_api_reserve_percent: float = Field(
        default=10,
        ge=0,
        lt=100,
        description="share of the org's daily API allocation a run leaves to other integrations",
    )
    bubble_api_base_url: str | None = None
    bubble_api_token: SecretStr | None = None
    bubble_rate_limit_per_minute: int = Field(
        default=1000,
        ge=1,
        description="requests per minute to one Bubble app, all workers together",
    )
    bubble_idempotency_field: str | None = Field(
        default=None, min_length=1, description="a text field of every type, set on each create"
    )
    bubble_field_map: BubbleFieldMap = Field(default_factory=dict)
    bubble_natural_keys: BubbleNaturalKeys = Field(
        default_factory=dict, description="data type -> a Bubble field unique to a record"
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
        default=300,
        ge=5,
        description="a claim by a process that is not a worker is re-claimable after this",
    )
    worker_heartbeat_seconds: float = Field(
        default=2.0, gt=0, description="how often each worker process renews its workers row"
    )
    worker_dead_after_seconds: float = Field(
        default=10.0, gt=0, description="a worker whose row is this old is dead: its work is taken"
    )
    max_lost_runs: int = Field(
        default=3, ge=1, description="runs of one item its worker may die in before it is dead"
    )
    fair_shares: bool = Field(
        default=True,
        description="pending rows are claimed round-robin across agencies, not oldest first",
    )
    retry_base_seconds: float = Field(default=30.0, gt=0)
    retry_max_seconds: float = Field(default=3600.0, gt=0)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # Where every process of a machine writes its task and claim metrics for /metrics.
    prometheus_multiproc_dir: Path = Path(__file__).resolve().parent.parent / "var" / "prometheus"

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
    cors_allowed_origins: str = Field(
        default="", description="comma-separated origins whose browser pages may call the API"
    )
    metrics_token: SecretStr | None = Field(
        default=None, min_length=16, description="when set, GET /metrics needs it as bearer token"
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
    enrichment_top_up_seconds: float = Field(
        default=30,
        ge=0,
        description="how long a drain of a full batch claims more as only its stragglers are "
        "left (0: never)",
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
    dial_round: int = Field(
        default=25,
        ge=1,
        description="dials a campaign run reserves at most before other campaigns' runs",
    )
    dial_lease_seconds: int = Field(
        default=600, ge=60, description="a reserved dial not recorded after this is over"
    )

    # Provider calls: tenacity attempts per request, then the task's own retries.
    http_retry_attempts: int = Field(default=4, ge=1)
    http_retry_initial_seconds: float = Field(default=1.0, ge=0)
    http_retry_max_seconds: float = Field(default=30.0, ge=0)
    task_retry_seconds: float = Field(default=10.0, ge=0)

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return value or None  # docker compose passes an unset METRICS_TOKEN as ""

    @model_validator(mode="after")
    def _heartbeat_before_death(self) -> Settings:
        if self.worker_dead_after_seconds < 2 * self.worker_heartbeat_seconds:
            raise ValueError("WORKER_DEAD_AFTER_SECONDS must be at least 2 heartbeats")
        return self

    @model_validator(mode="after")
    def _llm_key_when_used(self) -> Settings:
        if self.analyzer == "openai" and self.llm_api_key is None:
            raise ValueError("ANALYZER=openai needs LLM_API_KEY")
        return self

    @field_validator("bubble_field_map")
    @classmethod
    def _bubble_map_is_sound(
        cls, field_map: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, str]]:
        for type_name, columns in field_map.items():
            _check_bubble_type(type_name, columns)
        return field_map

    @field_validator("bubble_natural_keys")
    @classmethod
    def _natural_keys_are_sent(cls, keys: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for type_name, field in keys.items():
            columns = info.data.get("bubble_field_map", {}).get(type_name)
            if columns is not None and field not in columns.values():
                raise ValueError(
                    f"{field!r}, the key of {type_name!r}, is not a field BUBBLE_FIELD_MAP sends"
                )
        return keys


def _check_bubble_type(type_name: str, columns: dict[str, str]) -> None:
    if not type_name or any(c.isspace() or c.isupper() for c in type_name):
        raise ValueError(f'{type_name!r} is not a type\'s URL name ("Rental Unit" is "rentalunit")')
    fields = list(columns.values())
    if not columns or not all(columns) or not all(fields):
        raise ValueError(f"{type_name!r} needs columns mapped to non-empty field keys")
    if duplicated := sorted({f for f in fields if fields.count(f) > 1}):
        raise ValueError(f"{type_name!r} sends {duplicated[0]!r} from more than one column")


def comma_separated(value: str) -> list[str]:
    """The items of a comma-separated setting, blanks dropped."""
    return [item.strip() for item in value.split(",") if item.strip()]


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
