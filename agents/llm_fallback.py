"""The slow path: records the rules were unsure about, classified by the LLM on their own topic
so that confident records keep flowing past them.

Records are taken in small batches and their LLM calls run concurrently (the client bounds
concurrency and rate). Not Faust agent concurrency: with several actors Faust can commit an
offset past a record still in flight (faust-streaming issue #606) and its result would be lost.
The batch's results are sent and their delivery awaited before the batch is acknowledged.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from faust import StreamT
from faust.types import EventT

from agents.emit import Delivery, emit_dead_letter, emit_result, send_event
from domain.classify import Classification
from domain.merchant import needs_merchant_data
from domain.pipeline import Enrichment, Rejection, build_result, classification_block, privacy_checked
from domain.privacy import failure_summary
from schemas.events import SourcePosition
from streams import metrics
from streams.app import WorkerContext

log = structlog.get_logger(__name__)

BATCH_WAIT_S = 0.2


async def handle_llm_event(ctx: WorkerContext, event: EventT) -> list[Delivery]:
    """Never raises: the LLM client degrades instead of failing; anything else is dead-lettered."""
    assert ctx.llm is not None
    message = event.message
    source = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
    metrics.RECORDS_IN.labels(topic=message.topic).inc()
    try:
        enrichment = Enrichment.from_json(event.value)
        structlog.contextvars.bind_contextvars(correlation_id=enrichment.correlation_id)
        # Queued by an older worker or under permissive privacy: the current setting decides.
        enrichment = privacy_checked(enrichment, ctx.settings.llm_privacy)
        if enrichment.llm_privacy == "withheld":
            result = build_result(enrichment, ctx.versions(), ctx.thresholds)
            return await emit_result(ctx, result, sent_to_llm=False, received_at=message.timestamp, immediate=True)
        # decision_id is a result field (set by reviewers), not part of a rules classification.
        rules_result = Classification(**enrichment.classification.model_dump(exclude={"decision_id"}))
        started = time.perf_counter()
        classification = await ctx.llm.classify(enrichment.record.payee_name, rules_result)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
        enrichment = enrichment.with_classification(classification_block(classification), "llm", elapsed_ms)
        if ctx.merchant is not None and needs_merchant_data(enrichment, ctx.merchant_policy):
            return [await send_event(ctx.topics.merchant, event.key, enrichment.to_json(), [], immediate=True)]
        result = build_result(enrichment, ctx.versions(), ctx.thresholds)
        return await emit_result(ctx, result, sent_to_llm=True, received_at=message.timestamp, immediate=True)
    except Exception as exc:
        metrics.AGENT_ERRORS.labels(agent="llm").inc()
        log.exception("llm_stage_failed", source_partition=source.partition, source_offset=source.offset)
        rejection = Rejection("llm", type(exc).__name__, failure_summary(exc))
        return await emit_dead_letter(ctx, rejection, event.key, event.value, source, None, immediate=True)
    finally:
        structlog.contextvars.clear_contextvars()


def register(ctx: WorkerContext) -> None:
    batch_size = ctx.settings.llm_max_concurrency * 4

    @ctx.app.agent(ctx.topics.llm, name="payees-llm")
    async def classify_with_llm(stream: StreamT) -> None:
        async for events in stream.take_events(batch_size, within=BATCH_WAIT_S):
            deliveries = await asyncio.gather(*(handle_llm_event(ctx, event) for event in events))
            # A delivery failure raises here, before the batch is acknowledged: redelivered, not lost.
            await asyncio.gather(*(delivery for batch in deliveries for delivery in batch))
