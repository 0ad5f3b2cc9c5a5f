"""The slow path: records the rules were unsure about, classified by the LLM on their own topic
so that confident records keep flowing past them."""

from __future__ import annotations

import time

import structlog
from faust import StreamT
from faust.types import EventT

from agents.emit import emit_dead_letter, emit_result
from domain.classify import Classification
from domain.pipeline import Enrichment, Rejection, build_result, classification_block
from schemas.events import SourcePosition
from streams import metrics
from streams.app import WorkerContext

log = structlog.get_logger(__name__)


async def handle_llm_event(ctx: WorkerContext, event: EventT) -> None:
    """Never raises: the LLM client degrades instead of failing; anything else is dead-lettered."""
    assert ctx.llm is not None
    message = event.message
    source = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
    metrics.RECORDS_IN.labels(topic=message.topic).inc()
    try:
        enrichment = Enrichment.from_json(event.value)
        structlog.contextvars.bind_contextvars(correlation_id=enrichment.correlation_id)
        rules_result = Classification(**enrichment.classification.model_dump())
        started = time.perf_counter()
        classification = await ctx.llm.classify(enrichment.record.payee_name, rules_result)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        enrichment = enrichment.with_classification(classification_block(classification), "llm", elapsed_ms)
        result = build_result(enrichment, ctx.versions(), ctx.thresholds)
        await emit_result(ctx, result, sent_to_llm=True, received_at=message.timestamp)
    except Exception as exc:
        metrics.AGENT_ERRORS.labels(agent="llm").inc()
        log.exception("llm_stage_failed", source_partition=source.partition, source_offset=source.offset)
        rejection = Rejection("llm", type(exc).__name__, str(exc)[:500])
        await emit_dead_letter(ctx, rejection, event.key, event.value, source, None)
    finally:
        structlog.contextvars.clear_contextvars()


def register(ctx: WorkerContext) -> None:
    @ctx.app.agent(ctx.topics.llm, name="payees-llm", concurrency=ctx.settings.llm_max_concurrency)
    async def classify_with_llm(stream: StreamT) -> None:
        async for event in stream.events():
            await handle_llm_event(ctx, event)
