"""The one place settings are read: environment variables prefixed ``PAYEE_STREAM_``.

Secret values (``SecretStr``: passwords, API keys, DSNs, the operator token) can also come from
files, as a Kubernetes secret mount provides them: ``PAYEE_STREAM_<NAME>_FILE=/path`` names the
file of one, and ``PAYEE_STREAM_SECRETS_DIR`` a directory holding files named like the variables
(``PAYEE_STREAM_POSTGRES_DSN``, any case). Only secret settings are read from files. An
environment variable wins over a file.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StringConstraints, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "PAYEE_STREAM_"
SECRETS_DIR_VARIABLE = f"{ENV_PREFIX}SECRETS_DIR"
KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
# `openssl rand -hex 32` gives 64 characters; anything guessable or left as a placeholder is shorter.
OPERATOR_TOKEN_MIN_LENGTH = 16
PostgresSslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation is SecretStr or field.annotation == SecretStr | None


class SecretFileSource(PydanticBaseSettingsSource):
    """Secret fields read from the file named by ``PAYEE_STREAM_<NAME>_FILE``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{ENV_PREFIX}{field_name.upper()}_FILE"
        path = os.environ.get(variable)
        if not path or not _is_secret(field):
            return None, field_name, False
        # Secret files commonly end with a newline that is not part of the value.
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n"), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[field_name] = value
        return values


class SecretsDirectorySource(SecretsSettingsSource):
    """Secret fields read from ``PAYEE_STREAM_SECRETS_DIR``; other files there are not settings."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if not _is_secret(field):
            return None, field_name, False
        return super().get_field_value(field, field_name)


class Settings(BaseSettings):
    # An invalid setting must not echo the inputs (pydantic's input_value would quote the tail of
    # them all, a DSN's password included) on the startup error, printed before logging is set up.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", hide_input_in_errors=True
    )

    # Broker
    broker_url: str = "kafka://127.0.0.1:9092"
    # How every Kafka client (worker, sink, CLI) connects: see streams/kafka_security.py. With SSL or
    # SASL_SSL and no CA file the system's trusted CAs are used (as for a managed Kafka).
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None  # a client certificate, for brokers that require one
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_sasl_mechanism: KafkaSaslMechanism = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
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
    topic_merchant: str = "payees.merchant"
    topic_suppliers: str = "suppliers"
    # Reviewers' decisions, compacted, keyed by normalised payee name and scope (schemas/decisions.py).
    topic_decisions: str = "payees.decisions"

    # Worker
    data_dir: Path = Path(".payee-stream")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # Endpoints that change the worker's state (resuming after the dead-letter guard) are served
    # apart from /ready and /metrics, on loopback unless told otherwise, and only with a token
    # (sent as "Authorization: Bearer <token>"); without one they are not served at all. A token
    # shorter than OPERATOR_TOKEN_MIN_LENGTH (an empty one, a placeholder) is refused at startup.
    operator_token: SecretStr | None = Field(default=None, min_length=OPERATOR_TOKEN_MIN_LENGTH)
    operator_host: str = "127.0.0.1"
    operator_port: int = 6068
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
    source_default_places: dict[str, Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}(-[A-Z]{2})?$")]] = Field(
        default_factory=dict
    )
    default_country: str = Field(default="US", pattern=r"^([A-Z]{2})?$")

    # LLM (any OpenAI-compatible endpoint); disabled when no base URL is set.
    llm_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr = SecretStr("unused")
    # "strict": a name the rules read as possibly a person's is never sent to the LLM; it goes to
    # review instead. "permissive" sends it (a self-hosted endpoint, or one under a data-processing
    # agreement) and the audit event says so.
    llm_privacy: Literal["strict", "permissive"] = "strict"
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
    # The DSN may carry sslmode/sslrootcert itself; the settings below take precedence over it.
    postgres_dsn: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    postgres_password: SecretStr | None = None
    postgres_sslmode: PostgresSslMode | None = None
    postgres_ssl_rootcert: Path | None = None  # CA for verify-ca / verify-full (else the system's)
    postgres_ssl_cert: Path | None = None  # needs a mode that makes TLS certain (require or verify-*)
    postgres_ssl_key: Path | None = None
    # The database holding the suppliers table for `suppliers sync` when it is not this one (its
    # DSN carries its own TLS parameters); `--dsn` on the command line overrides it.
    suppliers_source_dsn: SecretStr | None = None
    # Tables live in this schema (created by `payee-stream db migrate`); tests use one per test.
    postgres_schema: str = Field(default="public", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    sink_metrics_port: int = 6067
    sink_batch_size: int = Field(default=1000, ge=1)
    # Failed writes are retried with exponential backoff and jitter between these bounds.
    sink_retry_initial_s: float = Field(default=0.2, gt=0)
    sink_retry_max_s: float = Field(default=10.0, gt=0)

    # Review console (`payee-stream review`)
    review_host: str = "127.0.0.1"
    review_port: int = 6070
    # Priority = payment amount x uncertainty; a review item without an amount counts as this much.
    review_default_amount: float = Field(default=1000.0, ge=0)
    review_page_size: int = Field(default=50, ge=1, le=500)
    review_session_ttl_s: float = Field(default=8 * 3600, gt=0)
    # Set on HTTPS deployments so that the session cookie is never sent in clear.
    review_cookie_secure: bool = False
    # The PayeeStreamReviewBacklogStale alert fires when the oldest open item is older than this.
    review_max_age_s: float = Field(default=2 * 86400, gt=0)
    review_metrics_interval_s: float = Field(default=15.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings, SecretFileSource(settings_cls)]
        secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
        if secrets_dir:
            sources.append(SecretsDirectorySource(settings_cls, secrets_dir=secrets_dir))
        return tuple(sources)

    @model_validator(mode="after")
    def _security_settings_are_whole(self) -> Settings:
        if self.kafka_uses_sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"{self.kafka_security_protocol} needs kafka_sasl_username and kafka_sasl_password")
        if not self.kafka_uses_tls and (self.kafka_ssl_cafile or self.kafka_ssl_certfile or self.kafka_ssl_keyfile):
            raise ValueError(f"TLS files are set but kafka_security_protocol is {self.kafka_security_protocol}")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together")
        if bool(self.postgres_ssl_cert) != bool(self.postgres_ssl_key):
            raise ValueError("postgres_ssl_cert and postgres_ssl_key go together")
        # TLS files the connection would not use are refused rather than silently ignored.
        mode = self.postgres_sslmode or "unset"
        if self.postgres_ssl_rootcert and mode not in ("verify-ca", "verify-full"):
            raise ValueError(f"postgres_ssl_rootcert is checked only with postgres_sslmode verify-ca or verify-full, not {mode}")
        if self.postgres_ssl_cert and mode not in ("require", "verify-ca", "verify-full"):
            raise ValueError(f"postgres_ssl_cert needs postgres_sslmode require, verify-ca or verify-full, not {mode}")
        return self

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def on_tansu(self) -> bool:
        return self.broker_flavor == "tansu"

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, to hand to a child process (secrets included)."""
        env = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                # Complex values are read back as JSON.
                env[f"{ENV_PREFIX}{name.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
