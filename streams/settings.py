"""The one place settings are read: environment variables prefixed ``PAYEE_STREAM_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
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
    # Source offsets are committed this often, as far as every output before them is delivered
    # (outputs are published at once; the interval bounds how much a crash makes redeliver).
    commit_interval_s: float = Field(default=0.5, gt=0)
    # The largest message the broker takes (Kafka's default message.max.bytes is 1,048,588):
    # every output is kept within it, dead letters by keeping a prefix of the original.
    max_message_bytes: int = Field(default=1_000_000, ge=16 * 1024)
    # Source records in flight (handed to delivery, not yet committable) per partition; a full
    # partition is paused until half of it is delivered (backpressure; bounds memory and latency).
    max_in_flight_per_partition: int = Field(default=1000, ge=1)
    # The producer waits this long to fill a batch (lower: latency; higher: bigger batches).
    producer_linger_ms: int = Field(default=5, ge=0)
    # Failed deliveries are retried with backoff between these bounds; a record still failing
    # after `delivery_stall_after_s` stalls its partition (fail closed, /ready says why, alert).
    delivery_retry_initial_s: float = Field(default=0.1, gt=0)
    delivery_retry_max_s: float = Field(default=5.0, gt=0)
    delivery_stall_after_s: float = Field(default=10.0, gt=0)
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
    topic_suppliers: str = "suppliers"

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

    # PostgreSQL sink
    postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    # Tables live in this schema (created by `payee-stream db migrate`); tests use one per test.
    postgres_schema: str = Field(default="public", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    sink_metrics_port: int = 6067
    sink_batch_size: int = Field(default=1000, ge=1)
    # Failed writes are retried with exponential backoff and jitter between these bounds.
    sink_retry_initial_s: float = Field(default=0.2, gt=0)
    sink_retry_max_s: float = Field(default=10.0, gt=0)

    @property
    def on_tansu(self) -> bool:
        return self.broker_flavor == "tansu"

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, to hand to a child process."""
        env = {}
        for name, value in self.model_dump().items():
            if value is not None:
                env[f"PAYEE_STREAM_{name.upper()}"] = str(value)
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
