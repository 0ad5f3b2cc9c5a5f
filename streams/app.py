"""The Faust application: settings → app, topics, supplier index, LLM client, agents, web views."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version

import faust
import structlog

from domain.classify import LlmClassifier, LlmConfig
from domain.dead_letter_guard import DeadLetterGuard
from domain.matching import SupplierIndex
from domain.merchant import MerchantPolicy
from domain.merchant_http import HttpMerchantProvider, HttpProviderConfig
from domain.pipeline import Thresholds, current_versions
from schemas.events import Versions
from streams import faust_transport, metrics, tansu_compat
from streams.broker_health import BrokerHealth
from streams.decisions_table import DecisionTableService
from streams.kafka_security import faust_broker_credentials, kafka_client_options
from streams.operator_api import OperatorApi
from streams.settings import Settings
from streams.supplier_index import SupplierIndexService
from streams.topics import Topics, declare_topics

log = structlog.get_logger(__name__)

try:
    PIPELINE_VERSION = version("payee-stream")
except PackageNotFoundError:  # running from a source tree that is not installed
    PIPELINE_VERSION = "0.0.0+source"


@dataclass
class WorkerContext:
    """What the agents share: settings, topics, the supplier index and the LLM client."""

    app: faust.App
    settings: Settings
    topics: Topics
    index_service: SupplierIndexService
    broker_health: BrokerHealth
    llm: LlmClassifier | None
    thresholds: Thresholds
    dead_letter_guard: DeadLetterGuard
    decisions: DecisionTableService
    # Set while consuming is allowed; cleared when the guard trips with action "pause".
    consuming: asyncio.Event = field(default_factory=asyncio.Event)
    merchant: HttpMerchantProvider | None = None
    merchant_policy: MerchantPolicy = field(default_factory=MerchantPolicy)

    def __post_init__(self) -> None:
        self.consuming.set()

    @property
    def index(self) -> SupplierIndex:
        return self.index_service.index

    def versions(self) -> Versions:
        return current_versions(self.index, PIPELINE_VERSION, self.thresholds)

    @property
    def ready(self) -> bool:
        return (
            self.index_service.ready
            and self.decisions.ready
            and self.broker_health.reachable
            and not self.app.rebalancing
            and self.consuming.is_set()
        )

    def count_outcome(self, dead_lettered: bool) -> None:
        if not self.dead_letter_guard.record(dead_lettered):
            return
        metrics.DLQ_GUARD_TRIPPED.set(1)
        log.error(
            "dead_letter_guard_tripped",
            ratio=round(self.dead_letter_guard.ratio, 3),
            action=self.settings.dlq_guard_action,
        )
        if self.settings.dlq_guard_action == "pause":
            self.consuming.clear()

    def resume_after_guard(self) -> None:
        self.dead_letter_guard.reset()
        metrics.DLQ_GUARD_TRIPPED.set(0)
        self.consuming.set()
        log.warning("dead_letter_guard_resumed")


def make_supplier_index(settings: Settings) -> SupplierIndex:
    return SupplierIndex(
        match_threshold=settings.match_threshold,
        ambiguity_margin=settings.match_ambiguity_margin,
    )


def llm_config(settings: Settings) -> LlmConfig | None:
    if not settings.llm_base_url:
        return None
    return LlmConfig(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value(),
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        rate_per_s=settings.llm_rate_per_s,
        burst=settings.llm_burst,
        max_concurrency=settings.llm_max_concurrency,
        cache_size=settings.llm_cache_size,
        breaker_failure_threshold=settings.llm_breaker_failure_threshold,
        breaker_reset_s=settings.llm_breaker_reset_s,
    )


def merchant_provider_config(settings: Settings) -> HttpProviderConfig | None:
    """The configured provider's settings; None (no lookups) unless one is named and reachable."""
    if settings.merchant_provider == "track" and settings.track_base_url:
        return HttpProviderConfig(
            name="track",
            base_url=settings.track_base_url,
            api_key=settings.track_api_key.get_secret_value(),
            timeout_s=settings.track_timeout_s,
            max_retries=settings.track_max_retries,
            rate_per_s=settings.track_rate_per_s,
            burst=settings.track_burst,
            max_concurrency=settings.track_max_concurrency,
            cache_size=settings.track_cache_size,
            breaker_failure_threshold=settings.track_breaker_failure_threshold,
            breaker_reset_s=settings.track_breaker_reset_s,
            max_batch=settings.track_max_batch,
        )
    return None


def faust_app(settings: Settings, app_id: str) -> faust.App:
    broker = settings.broker_url
    conf: dict[str, object] = {
        "broker_session_timeout": settings.session_timeout_s,
        "broker_heartbeat_interval": settings.heartbeat_interval_s,
        "broker_credentials": faust_broker_credentials(settings),
    }
    if settings.on_tansu:
        tansu_compat.install()
        broker = faust_transport.with_scheme(broker, tansu_compat.TANSU_SCHEME)
        conf.update(tansu_compat.faust_overrides())
    else:
        faust_transport.install()
        broker = faust_transport.with_scheme(broker, faust_transport.KAFKA_SCHEME)
    return faust.App(
        app_id,
        broker=broker,
        store="memory://",
        autodiscover=False,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # At-least-once: results are published when the source offset is committed, and the
        # commit waits for the broker to acknowledge them. A crash means redelivery, never loss.
        stream_publish_on_commit=True,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        **conf,
    )


def create_worker(settings: Settings) -> WorkerContext:
    """The enrichment worker: consumes ``payees.raw`` (and the LLM hand-off topic)."""
    # Imported here: agents register themselves on the app they are given.
    from agents import llm_fallback, merchant_enrichment, process
    from streams import views

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust_app(settings, settings.app_id)
    index_service = SupplierIndexService(
        kafka_options=kafka_client_options(settings),
        topic=settings.topic_suppliers,
        snapshot_dir=settings.data_dir / "supplier-index",
        snapshot_interval_s=settings.index_snapshot_interval_s,
        index_factory=lambda: make_supplier_index(settings),
        on_change=lambda index: metrics.INDEX_SIZE.set(len(index)),
    )
    app.service(index_service)
    broker_health = BrokerHealth(
        kafka_options=kafka_client_options(settings),
        interval_s=settings.broker_check_interval_s,
        timeout_s=settings.broker_check_timeout_s,
    )
    app.service(broker_health)
    decisions = DecisionTableService(
        kafka_options=kafka_client_options(settings), topic=settings.topic_decisions
    )
    app.service(decisions)
    config = llm_config(settings)
    merchant_config = merchant_provider_config(settings)
    ctx = WorkerContext(
        app=app,
        settings=settings,
        topics=declare_topics(app, settings),
        index_service=index_service,
        broker_health=broker_health,
        llm=LlmClassifier(config) if config else None,
        thresholds=Thresholds(review=settings.review_threshold, llm=settings.llm_threshold),
        dead_letter_guard=DeadLetterGuard(
            window=settings.dlq_guard_window,
            max_ratio=settings.dlq_guard_max_ratio,
            min_records=settings.dlq_guard_min_records,
        ),
        merchant=HttpMerchantProvider(merchant_config) if merchant_config else None,
        merchant_policy=MerchantPolicy(min_confidence=settings.merchant_min_confidence),
        decisions=decisions,
    )
    process.register(ctx)
    if ctx.llm is not None:
        metrics.LLM.client = ctx.llm
        llm_fallback.register(ctx)
    if ctx.merchant is not None:
        merchant_enrichment.register(ctx)
    views.register(ctx)
    if settings.operator_token is not None:  # no token, no state-changing endpoints
        operator_api = OperatorApi(
            host=settings.operator_host,
            port=settings.operator_port,
            token=settings.operator_token,
            resume_after_guard=ctx.resume_after_guard,
        )
        app.service(operator_api)
    return ctx


class JsonLogWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    At WARNING and above Faust sets the root logger to DEBUG so that every library debug record
    turns the spinner: every send then builds a log record nobody reads (a fifth of a loaded
    worker's CPU). Logs here are JSON lines for a collector, not a terminal.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        return None
