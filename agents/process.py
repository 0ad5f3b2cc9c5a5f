"""The fast path: validate → match → classify (rules) → emit, or hand over to the LLM agent."""

from __future__ import annotations

import structlog
from faust import StreamT
from faust.types import EventT

from agents.emit import emit_dead_letter, emit_result, header_value
from domain.merchant import needs_merchant_data
from domain.pipeline import Rejection, build_result, decode_record, enrich, route_to_llm
from domain.privacy import failure_summary
from schemas.events import SourcePosition
from streams import metrics
from streams.app import WorkerContext

log = structlog.get_logger(__name__)

REPLAY_RUN_HEADER = "x-replay-run-id"


async def handle_raw_event(ctx: WorkerContext, event: EventT) -> None:
    """Never raises: every failure becomes a dead letter, so no message is acked unhandled."""
    message = event.message
    source = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
    replay_run_id = header_value(message.headers, REPLAY_RUN_HEADER)
    metrics.RECORDS_IN.labels(topic=message.topic).inc()
    try:
        with metrics.STAGE_LATENCY.labels(stage="validate").time():
            decoded = decode_record(event.value, ctx.settings.max_record_bytes)
        if isinstance(decoded, Rejection):
            await emit_dead_letter(ctx, decoded, event.key, event.value, source, replay_run_id)
            ctx.count_outcome(dead_lettered=True)
            return
        enrichment = enrich(
            decoded, ctx.index, source=source, replay_run_id=replay_run_id, decisions=ctx.decisions.table
        )
        structlog.contextvars.bind_contextvars(correlation_id=enrichment.correlation_id)
        to_llm = False
        if ctx.llm is not None:
            enrichment, to_llm = route_to_llm(enrichment, ctx.thresholds, ctx.settings.llm_privacy)
        if to_llm:
            await ctx.topics.llm.send(key=event.key, value=enrichment.to_json())
            metrics.RECORDS_OUT.labels(topic=ctx.topics.llm.get_topic_name()).inc()
        elif ctx.merchant is not None and needs_merchant_data(enrichment, ctx.merchant_policy):
            await ctx.topics.merchant.send(key=event.key, value=enrichment.to_json())
            metrics.RECORDS_OUT.labels(topic=ctx.topics.merchant.get_topic_name()).inc()
        else:
            result = build_result(enrichment, ctx.versions(), ctx.thresholds)
            await emit_result(ctx, result, sent_to_llm=False, received_at=message.timestamp)
        ctx.count_outcome(dead_lettered=False)
    except Exception as exc:  # a bug or bad data in the core must not lose the record
        metrics.AGENT_ERRORS.labels(agent="process").inc()
        log.exception("process_failed", source_partition=source.partition, source_offset=source.offset)
        rejection = Rejection("enrich", type(exc).__name__, failure_summary(exc))
        await emit_dead_letter(ctx, rejection, event.key, event.value, source, replay_run_id)
        ctx.count_outcome(dead_lettered=True)
    finally:
        structlog.contextvars.clear_contextvars()


def register(ctx: WorkerContext) -> None:
    @ctx.app.agent(ctx.topics.raw, name="payees-process")
    async def process_payees(stream: StreamT) -> None:
        await ctx.index_service.wait_ready()
        await ctx.decisions.wait_ready()
        async for event in stream.events():
            await ctx.consuming.wait()  # held while the poison-flood guard is tripped
            await handle_raw_event(ctx, event)
