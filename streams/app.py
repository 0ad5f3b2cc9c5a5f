"""The worker: settings → Faust app (services, web views), supplier index, reviewers' decisions,
LLM and merchant-data clients, the consumer loop with its delivery layer, the agents registered
on it, and the operator API."""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.app.base import BootStrategy
import structlog
from aiokafka import AIOKafkaConsumer

from agents import llm_fallback, merchant_enrichment, process
from domain.classify import LlmClassifier, LlmConfig
from domain.dead_letter_guard import DeadLetterGuard
from domain.matching import DefaultPlaces, SupplierIndex
from domain.merchant import MerchantPolicy
from domain.merchant_http import HttpMerchantProvider, HttpProviderConfig
from domain.outcome import CoreConfig, Role
from domain.pipeline import Thresholds
from domain.resilience import CALL_LIMIT_FIELDS
from streams import metrics, views
from streams.broker_health import BrokerHealth
from streams.context import WorkerContext
from streams.decisions_table import DecisionTableService
from streams.delivery import DeliveryPolicy
from streams.kafka_io import group_consumer_options, worker_producer
from streams.kafka_security import kafka_client_options
from streams.operator_api import OperatorApi
from streams.settings import Settings
from streams.source import SourceLoop
from streams.supplier_index import SupplierIndexService

log = structlog.get_logger(__name__)


def make_supplier_index(settings: Settings) -> SupplierIndex:
    return SupplierIndex(
        match_threshold=settings.match_threshold,
        ambiguity_margin=settings.match_ambiguity_margin,
    )


def _call_limits(settings: Settings, prefix: str) -> dict[str, Any]:
    """The ``CallLimits`` of one external client from its settings (``llm_timeout_s``, ...)."""
    return {limit: getattr(settings, f"{prefix}_{limit}") for limit in CALL_LIMIT_FIELDS}


def llm_config(settings: Settings) -> LlmConfig | None:
    if not settings.llm_base_url:
        return None
    return LlmConfig(
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key.get_secret_value(),
        **_call_limits(settings, "llm"),
    )


def merchant_provider_config(settings: Settings) -> HttpProviderConfig | None:
    """The configured provider's settings; None (no lookups) unless one is named and reachable."""
    if settings.merchant_provider == "track" and settings.track_base_url:
        return HttpProviderConfig(
            name="track",
            base_url=settings.track_base_url,
            api_key=settings.track_api_key.get_secret_value(),
            max_batch=settings.track_max_batch,
            **_call_limits(settings, "track"),
        )
    return None


class ServicesAndWeb(BootStrategy):
    """Faust starts the services and the web server; no Faust consumer or producer (the
    consumer loop has its own, and a Faust consumer would join the worker's group)."""

    enable_kafka = False


class WorkerApp(faust.App):
    BootStrategy = ServicesAndWeb


def faust_app(settings: Settings, app_id: str) -> faust.App:
    return WorkerApp(
        app_id,
        # Faust opens no Kafka connection here (see ServicesAndWeb).
        broker=settings.broker_url,
        store="memory://",
        autodiscover=False,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Faust hosts the services and the web views; records are consumed and outputs
        # delivered by the consumer loop (streams/source.py, streams/delivery.py).
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
    )


def output_topics(settings: Settings) -> dict[Role, str]:
    return {
        "enriched": settings.topic_enriched,
        "review": settings.topic_review,
        "audit": settings.topic_audit,
        "dlq": settings.topic_dlq,
        "llm": settings.topic_llm,
        "merchant": settings.topic_merchant,
    }


def source_consumer(settings: Settings) -> AIOKafkaConsumer:
    """The worker's group consumer; offsets are committed by the consumer loop only."""
    return AIOKafkaConsumer(
        **kafka_client_options(settings),
        group_id=settings.app_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=settings.max_message_bytes + 64 * 1024,
        **group_consumer_options(settings),
    )


def create_worker(settings: Settings) -> WorkerContext:
    """The enrichment worker: consumes ``payees.raw`` (and the LLM and merchant hand-off topics)."""
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
    decisions = DecisionTableService(kafka_options=kafka_client_options(settings), topic=settings.topic_decisions)
    app.service(decisions)

    async def wait_before_start() -> None:
        await index_service.wait_ready()
        await decisions.wait_ready()

    source = SourceLoop(
        consumer_factory=lambda: source_consumer(settings),
        producer_factory=lambda: worker_producer(settings),
        topics=output_topics(settings),
        policy=DeliveryPolicy(
            max_message_bytes=settings.max_message_bytes,
            retry_initial_s=settings.delivery_retry_initial_s,
            retry_max_s=settings.delivery_retry_max_s,
            stall_after_s=settings.delivery_stall_after_s,
        ),
        guard=DeadLetterGuard(
            window=settings.dlq_guard_window,
            max_ratio=settings.dlq_guard_max_ratio,
            min_records=settings.dlq_guard_min_records,
        ),
        guard_action=settings.dlq_guard_action,
        commit_interval_s=settings.commit_interval_s,
        max_in_flight_per_partition=settings.max_in_flight_per_partition,
        # A partition hand-over must finish well within the session timeout.
        revoke_budget_s=min(5.0, group_consumer_options(settings)["session_timeout_ms"] / 1000 / 3),
        wait_before_start=wait_before_start,
    )
    app.service(source)
    config = llm_config(settings)
    merchant_config = merchant_provider_config(settings)
    merchant_policy = MerchantPolicy(min_confidence=settings.merchant_min_confidence)
    ctx = WorkerContext(
        app=app,
        settings=settings,
        index_service=index_service,
        broker_health=broker_health,
        decisions=decisions,
        llm=LlmClassifier(config) if config else None,
        merchant=HttpMerchantProvider(merchant_config) if merchant_config else None,
        core=CoreConfig(
            thresholds=Thresholds(review=settings.review_threshold, llm=settings.llm_threshold),
            max_record_bytes=settings.max_record_bytes,
            max_message_bytes=settings.max_message_bytes,
            llm_enabled=config is not None,
            llm_privacy=settings.llm_privacy,
            default_places=DefaultPlaces.parse(settings.default_country, settings.source_default_places),
            merchant_policy=merchant_policy if merchant_config else None,
        ),
        source=source,
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
            resume_after_guard=source.resume_after_guard,
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
