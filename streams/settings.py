"""The one place settings are read: environment variables prefixed ``PAYEE_STREAM_``."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAYEE_STREAM_", frozen=True, extra="ignore")

    # Broker
    broker_url: str = "kafka://127.0.0.1:9092"
    # "tansu" switches on the workarounds for the embedded Tansu broker (streams/tansu_compat.py);
    # production runs against Apache Kafka with "kafka".
    broker_flavor: Literal["kafka", "tansu"] = "kafka"
    app_id: str = "payee-stream"
    partitions: int = Field(default=4, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # Outputs are published when the source offset commits, so a short interval bounds latency.
    commit_interval_s: float = Field(default=0.5, gt=0)
    session_timeout_s: float = Field(default=30.0, gt=0)
    heartbeat_interval_s: float = Field(default=3.0, gt=0)
    # How often the worker checks it can reach the broker (for /ready and the broker_unreachable
    # log event), and how long one check may take before the broker counts as unreachable.
    broker_check_interval_s: float = Field(default=2.0, gt=0)
    broker_check_timeout_s: float = Field(default=5.0, gt=0)

    # Topics
    topic_raw: str = "payees.raw"
    topic_enriched: str = "payees.enriched"
    topic_review: str = "payees.review"
    topic_audit: str = "payees.audit"
    topic_dlq: str = "payees.dlq"
    topic_llm: str = "payees.llm"
    topic_merchant: str = "payees.merchant"
    topic_suppliers: str = "suppliers"
    # Reviewers' decisions, compacted, keyed by normalised payee name and scope (schemas/decisions.py).
    topic_decisions: str = "payees.decisions"

    # Worker
    data_dir: Path = Path(".payee-stream")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    log_level: str = "INFO"
    max_record_bytes: int = Field(default=64 * 1024, gt=0)
    index_snapshot_interval_s: float = Field(default=60.0, gt=0)
    # Poison-flood guard: over the last `window` records, more than `max_ratio` dead letters
    # (after at least `min_records`) trips it; "pause" stops consuming until resumed, "alert" only alerts.
    dlq_guard_window: int = Field(default=1000, ge=10)
    dlq_guard_max_ratio: float = Field(default=0.5, gt=0, le=1)
    dlq_guard_min_records: int = Field(default=200, ge=1)
    dlq_guard_action: Literal["pause", "alert"] = "pause"

    # Decisions
    match_threshold: float = Field(default=0.85, ge=0, le=1)
    match_ambiguity_margin: float = Field(default=0.05, ge=0, le=1)
    review_threshold: float = Field(default=0.75, ge=0, le=1)
    llm_threshold: float = Field(default=0.70, ge=0, le=1)
    # Where payees usually are, as weak match evidence where a record gives no state or country:
    # per source system ("US-AZ" or "US", JSON: {"ap-scottsdale": "US-AZ"}), else this country
    # ("" for none).
    source_default_places: dict[str, str] = Field(default_factory=dict)
    default_country: str = "US"

    # LLM (any OpenAI-compatible endpoint); disabled when no base URL is set.
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str = "unused"
    llm_timeout_s: float = Field(default=10.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0)
    llm_rate_per_s: float = Field(default=5.0, gt=0)
    llm_burst: int = Field(default=10, ge=1)
    llm_max_concurrency: int = Field(default=4, ge=1)
    llm_cache_size: int = Field(default=10_000, ge=0)
    llm_breaker_failure_threshold: int = Field(default=5, ge=1)
    llm_breaker_reset_s: float = Field(default=30.0, gt=0)

    # Merchant-data provider: off unless one is named here and its base URL is set. Only business
    # payees classified with at least `merchant_min_confidence` are looked up, never individuals.
    merchant_provider: Literal["track"] | None = None
    merchant_min_confidence: float = Field(default=0.8, ge=0, le=1)
    # The merchant agent takes up to `max_batch` hand-offs, or what came within this wait.
    merchant_batch_wait_s: float = Field(default=0.5, gt=0)
    # Per provider: Track Search-like (domain/merchant_http.py's contract).
    track_base_url: str | None = None
    track_api_key: SecretStr = SecretStr("")
    track_timeout_s: float = Field(default=5.0, gt=0)
    track_max_retries: int = Field(default=2, ge=0)
    track_rate_per_s: float = Field(default=5.0, gt=0)
    track_burst: int = Field(default=10, ge=1)
    track_max_concurrency: int = Field(default=4, ge=1)
    track_cache_size: int = Field(default=50_000, ge=0)
    track_breaker_failure_threshold: int = Field(default=5, ge=1)
    track_breaker_reset_s: float = Field(default=30.0, gt=0)
    track_max_batch: int = Field(default=50, ge=1)

    # PostgreSQL sink
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # Tables live in this schema (created by `payee-stream db migrate`); tests use one per test.
    postgres_schema: str = Field(default="public", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    sink_metrics_port: int = 6067
    sink_batch_size: int = Field(default=1000, ge=1)
    # Failed writes are retried with exponential backoff and jitter between these bounds.
    sink_retry_initial_s: float = Field(default=0.2, gt=0)
    sink_retry_max_s: float = Field(default=10.0, gt=0)

    # Review console (`payee-stream review`)
    review_host: str = "127.0.0.1"
    review_port: int = 6068
    # Priority = payment amount x uncertainty; a review item without an amount counts as this much.
    review_default_amount: float = Field(default=1000.0, ge=0)
    review_page_size: int = Field(default=50, ge=1, le=500)
    review_session_ttl_s: float = Field(default=8 * 3600, gt=0)
    # Set on HTTPS deployments so that the session cookie is never sent in clear.
    review_cookie_secure: bool = False
    # The PayeeStreamReviewBacklogStale alert fires when the oldest open item is older than this.
    review_max_age_s: float = Field(default=2 * 86400, gt=0)
    review_metrics_interval_s: float = Field(default=15.0, gt=0)

    @property
    def on_tansu(self) -> bool:
        return self.broker_flavor == "tansu"

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, to hand to a child process."""
        env = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                # Complex values are read back as JSON.
                env[f"PAYEE_STREAM_{name.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
