"""Prometheus metrics, served by the worker's web server on ``/metrics``."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.classify import LlmClassifier

REGISTRY = CollectorRegistry(auto_describe=True)

@functools.lru_cache(maxsize=4096)
def child(metric: Counter | Gauge | Histogram, *label_values: str):  # type: ignore[no-untyped-def]
    """``metric.labels(*label_values)``, looked up once: the hot path counts per record."""
    return metric.labels(*label_values)


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

RECORDS_IN = Counter(
    "payee_stream_records_in_total", "Records consumed, by topic", ["topic"], registry=REGISTRY
)
RECORDS_OUT = Counter(
    "payee_stream_records_out_total", "Records produced, by topic", ["topic"], registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "payee_stream_dead_letters_total",
    "Records sent to the dead-letter topic, by stage and reason",
    ["stage", "reason"],
    registry=REGISTRY,
)
STAGE_LATENCY = Histogram(
    "payee_stream_stage_latency_seconds",
    "Time spent in one processing step",
    ["stage"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
END_TO_END_LATENCY = Histogram(
    "payee_stream_end_to_end_latency_seconds",
    "From the input record's timestamp to its result being handed to the producer",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
MATCH_OUTCOMES = Counter(
    "payee_stream_match_outcomes_total",
    "Match decisions, by decision and match type",
    ["decision", "match_type"],
    registry=REGISTRY,
)
MATCH_SCORE = Histogram(
    "payee_stream_match_score",
    "Score of the best candidate",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 1.0),
    registry=REGISTRY,
)
CLASSIFICATIONS = Counter(
    "payee_stream_classifications_total",
    "Classifications, by entity type and method (rules, model, supplier, llm, degraded)",
    ["entity_type", "method"],
    registry=REGISTRY,
)
REVIEWS = Counter(
    "payee_stream_review_total", "Results sent to review, by reason", ["reason"], registry=REGISTRY
)
INDEX_SIZE = Gauge(
    "payee_stream_supplier_index_size", "Suppliers held in this worker's index", registry=REGISTRY
)
INDEX_READY = Gauge(
    "payee_stream_supplier_index_ready", "1 once the index has caught up", registry=REGISTRY
)
SINK_BACKLOG = Gauge(
    "payee_stream_sink_backlog",
    "Events received by the PostgreSQL sink and not yet written",
    registry=REGISTRY,
)
SINK_WRITES = Counter(
    "payee_stream_sink_rows_written_total", "Rows written by the PostgreSQL sink", ["table"], registry=REGISTRY
)
SINK_ERRORS = Counter(
    "payee_stream_sink_errors_total", "Failed PostgreSQL sink write attempts", registry=REGISTRY
)
AGENT_ERRORS = Counter(
    "payee_stream_agent_errors_total",
    "Exceptions caught in an agent (the record went to the dead-letter topic)",
    ["agent"],
    registry=REGISTRY,
)
DLQ_GUARD_TRIPPED = Gauge(
    "payee_stream_dlq_guard_tripped",
    "1 while the poison-flood guard is tripped (dead-letter ratio over its limit)",
    registry=REGISTRY,
)
DELIVERY_STALLED = Gauge(
    "payee_stream_delivery_stalled_partitions",
    "Source partitions stopped because an output could not be delivered (nothing after it commits)",
    registry=REGISTRY,
)
DELIVERY_RETRIES = Counter(
    "payee_stream_delivery_retries_total",
    "Failed sends retried by the delivery layer, by target topic",
    ["topic"],
    registry=REGISTRY,
)
DELIVERY_IN_FLIGHT = Gauge(
    "payee_stream_delivery_in_flight",
    "Source records submitted to the delivery layer and not yet committable",
    registry=REGISTRY,
)
PAUSED_PARTITIONS = Gauge(
    "payee_stream_paused_partitions",
    "Source partitions paused, by reason (backpressure, delivery_stalled, dead_letter_guard)",
    ["reason"],
    registry=REGISTRY,
)
SINK_REJECTED = Counter(
    "payee_stream_sink_rejected_total",
    "Records the PostgreSQL sink could not decode or store, by topic (kept in sink_rejected_records)",
    ["topic"],
    registry=REGISTRY,
)

# Served by the review console (`payee-stream review`), refreshed from PostgreSQL.
REVIEW_BACKLOG = Gauge(
    "payee_stream_review_backlog",
    "Open review items, by reason (an item with two reasons counts under both)",
    ["reason"],
    registry=REGISTRY,
)
REVIEW_OLDEST_AGE = Gauge(
    "payee_stream_review_oldest_item_age_seconds",
    "Age of the oldest open review item (0 when the queue is empty)",
    registry=REGISTRY,
)
REVIEW_MAX_AGE = Gauge(
    "payee_stream_review_max_age_seconds",
    "The oldest open item may be this old before PayeeStreamReviewBacklogStale fires "
    "(PAYEE_STREAM_REVIEW_MAX_AGE_S)",
    registry=REGISTRY,
)
REVIEW_DECISIONS_LAST_HOUR = Gauge(
    "payee_stream_review_decisions_last_hour",
    "Reviewers' decisions taken in the last hour (all consoles)",
    registry=REGISTRY,
)
REVIEW_DECISIONS = Counter(
    "payee_stream_review_decisions_total",
    "Decisions taken through this console, by outcome (alias, no_match, exclude, entity_type, undo)",
    ["outcome"],
    registry=REGISTRY,
)
REVIEW_REQUEST_LATENCY = Histogram(
    "payee_stream_review_request_latency_seconds",
    "Review console response time, by route",
    ["route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


class LlmCollector(Collector):
    """The LLM client's own counters, read at scrape time (zero until a worker attaches a client)."""

    OUTCOMES = {
        "success": "successes",
        "failure": "failures",
        "timeout": "timeouts",
        "invalid_reply": "invalid_replies",
        "retry": "retries",
        "cache_hit": "cache_hits",
        "degraded": "degraded",
    }

    def __init__(self) -> None:
        self.client: LlmClassifier | None = None

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.client.stats if self.client else None
        calls = CounterMetricFamily(
            "payee_stream_llm_calls", "LLM requests and their outcomes", labels=["outcome"]
        )
        for outcome, attribute in self.OUTCOMES.items():
            calls.add_metric([outcome], getattr(stats, attribute) if stats else 0)
        yield calls
        tokens = CounterMetricFamily("payee_stream_llm_tokens", "LLM tokens used", labels=["kind"])
        tokens.add_metric(["prompt"], stats.prompt_tokens if stats else 0)
        tokens.add_metric(["completion"], stats.completion_tokens if stats else 0)
        yield tokens
        breaker = GaugeMetricFamily(
            "payee_stream_llm_breaker_open", "1 while the LLM circuit breaker is open or half-open"
        )
        breaker.add_metric([], 0 if not self.client or self.client.breaker_state == "closed" else 1)
        yield breaker


LLM = LlmCollector()
REGISTRY.register(LLM)
