"""Emitting step shared by the agents: results, review copies, audit events, dead letters.

Sends made while an event is being processed are attached to it (``stream_publish_on_commit``)
and published, with acknowledgement awaited, before its offset is committed. A caller that
processes a batch itself (the LLM agent) sends immediately instead and awaits the returned
delivery futures before the batch is acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

import structlog
from faust.types import TopicT

from domain.pipeline import Rejection, dead_letter, decision_audit_events, rejection_audit_event
from schemas.events import SCHEMA_VERSION, AuditEvent, EnrichedPayee, SourcePosition
from streams import metrics
from streams.app import WorkerContext

log = structlog.get_logger(__name__)


def event_headers(event_id: str, correlation_id: str, **extra: str) -> list[tuple[str, bytes]]:
    headers = {
        "x-event-id": event_id,
        "x-correlation-id": correlation_id,
        "x-schema-version": str(SCHEMA_VERSION),
        **extra,
    }
    return [(name, value.encode()) for name, value in headers.items()]


Delivery = Awaitable[object]


async def send_event(
    topic: TopicT, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]], immediate: bool = False
) -> Delivery:
    delivery = await topic.send(key=key, value=value, headers=headers, force=immediate)
    metrics.RECORDS_OUT.labels(topic=topic.get_topic_name()).inc()
    return delivery


async def send_audit(ctx: WorkerContext, events: list[AuditEvent], immediate: bool = False) -> list[Delivery]:
    deliveries = []
    for audit in events:
        key = (audit.record_key or audit.correlation_id).encode()
        value = audit.model_dump_json().encode()
        headers = event_headers(audit.event_id, audit.correlation_id)
        deliveries.append(await send_event(ctx.topics.audit, key, value, headers, immediate))
    return deliveries


async def emit_result(
    ctx: WorkerContext,
    result: EnrichedPayee,
    sent_to_llm: bool,
    received_at: float | None,
    immediate: bool = False,
) -> list[Delivery]:
    key = result.record_key.encode()
    value = result.model_dump_json().encode()
    headers = event_headers(result.event_id, result.correlation_id, **{"x-status": result.status})
    deliveries = [await send_event(ctx.topics.enriched, key, value, headers, immediate)]
    if result.status == "review":
        deliveries.append(await send_event(ctx.topics.review, key, value, headers, immediate))
        for reason in result.review_reasons:
            metrics.REVIEWS.labels(reason=reason).inc()
    deliveries += await send_audit(ctx, decision_audit_events(result, sent_to_llm=sent_to_llm), immediate)

    match, classification = result.match, result.classification
    metrics.MATCH_OUTCOMES.labels(decision=match.decision, match_type=match.match_type).inc()
    metrics.MATCH_SCORE.observe(match.score)
    metrics.CLASSIFICATIONS.labels(
        entity_type=classification.entity_type, method=classification.method
    ).inc()
    for stage, elapsed_ms in result.timings_ms.items():
        metrics.STAGE_LATENCY.labels(stage=stage).observe(elapsed_ms / 1000)
    if received_at is not None:
        metrics.END_TO_END_LATENCY.observe(max(0.0, time.time() - received_at))
    return deliveries


async def emit_dead_letter(
    ctx: WorkerContext,
    rejection: Rejection,
    key: bytes | None,
    value: bytes | None,
    source: SourcePosition,
    replay_run_id: str | None,
    immediate: bool = False,
) -> list[Delivery]:
    letter = dead_letter(rejection, key, value, source, replay_run_id)
    headers = event_headers(
        letter.event_id,
        letter.correlation_id,
        **{
            "x-error-type": letter.error_type,
            "x-error-stage": letter.stage,
            "x-source-topic": source.topic,
            "x-source-partition": str(source.partition),
            "x-source-offset": str(source.offset),
        },
    )
    deliveries = [await send_event(ctx.topics.dlq, key, letter.model_dump_json().encode(), headers, immediate)]
    deliveries += await send_audit(ctx, [rejection_audit_event(letter, ctx.versions())], immediate)
    metrics.DEAD_LETTERS.labels(stage=letter.stage, reason=letter.error_type).inc()
    log.warning(
        "dead_lettered",
        stage=letter.stage,
        error_type=letter.error_type,
        source_partition=source.partition,
        source_offset=source.offset,
        event_id=letter.event_id,
    )
    return deliveries


def header_value(headers: object, name: str) -> str | None:
    """A header from a Faust message (a list of pairs or a mapping)."""
    pairs = headers.items() if isinstance(headers, dict) else (headers or [])
    for header_name, value in pairs:  # type: ignore[union-attr]
        if header_name == name and value is not None:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
