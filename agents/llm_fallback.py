"""The slow path: records the rules were unsure about, classified by the LLM on their own topic
so that confident records keep flowing past them.

Each record's outcome is an awaitable handed to the delivery layer at once; many are in flight
together (the LLM client bounds concurrency and rate, the consumer loop the records in flight
per partition), and the hand-off offset is committed only after the result is delivered, in
order. A worker killed between publish and acknowledgement therefore reprocesses, never loses.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka.structs import ConsumerRecord

from agents.observe import observe
from domain.outcome import (
    Outcome,
    hand_off_input,
    llm_result_outcome,
    stage_failure_outcome,
    stage_result_outcome,
)
from domain.pipeline import Enrichment, Rejection, classification_of, privacy_checked
from domain.privacy import failure_summary
from schemas.events import SourcePosition
from streams import metrics
from streams.context import WorkerContext

log = structlog.get_logger(__name__)


async def handle_llm_record(ctx: WorkerContext, calls: asyncio.Semaphore, record: ConsumerRecord) -> Outcome:
    """Never raises: the LLM client degrades instead of failing; anything else is dead-lettered.

    ``calls`` admits as many records to the client as it makes calls at once, so that records
    waiting their turn see the circuit breaker as it is when their turn comes, not as it was
    when they were read."""
    assert ctx.llm is not None
    metrics.child(metrics.RECORDS_IN, record.topic).inc()
    position = SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset)
    decoded = hand_off_input(record.value, "llm")
    enrichment: Enrichment | None = None
    try:
        if isinstance(decoded, Rejection):
            raise ValueError(decoded.message)
        # Queued by an older worker or under permissive privacy: the current setting decides.
        enrichment = privacy_checked(decoded, ctx.core.llm_privacy)
        if enrichment.llm_privacy == "withheld":
            outcome = stage_result_outcome(enrichment, False, ctx.versions(), ctx.core)
        else:
            rules_result = classification_of(enrichment.classification)
            started = time.perf_counter()
            async with calls:
                classification = await ctx.llm.classify(enrichment.record.payee_name, rules_result)
            elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
            outcome = llm_result_outcome(enrichment, classification, elapsed_ms, ctx.versions(), ctx.core)
    except Exception as exc:
        metrics.AGENT_ERRORS.labels(agent="llm").inc()
        log.exception("llm_stage_failed", source_partition=record.partition, source_offset=record.offset)
        rejection = (
            decoded if isinstance(decoded, Rejection) else Rejection("llm", type(exc).__name__, failure_summary(exc))
        )
        outcome = stage_failure_outcome(
            rejection, record.key, record.value, position, enrichment, ctx.versions(), ctx.core
        )
    observe(outcome, record.timestamp)
    return outcome


def register(ctx: WorkerContext) -> None:
    calls = asyncio.Semaphore(ctx.settings.llm_max_concurrency)
    ctx.source.route(ctx.settings.topic_llm, lambda record: handle_llm_record(ctx, calls, record))
