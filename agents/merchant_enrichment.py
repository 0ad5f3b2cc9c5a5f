"""The merchant-data stage: business payees the policy allows, looked up at an external provider
in batches on their own topic, so records that need no lookup never wait for one.

The core is ``domain.merchant.merchant_stage`` (hand-off messages in, results out, the provider
called once per batch); this agent decodes nothing itself and only hands the outputs to the
emitting step. As in the LLM agent, the batch's results are sent and their delivery awaited
before the batch is acknowledged; a provider failure is a result with ``enrichment.status``
"unavailable", never a lost or stuck record.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import structlog
from faust import StreamT
from faust.types import EventT

from agents.emit import Delivery, emit_dead_letter, emit_result
from domain.merchant import merchant_stage
from domain.pipeline import Rejection
from schemas.events import SourcePosition
from streams import metrics
from streams.app import WorkerContext

log = structlog.get_logger(__name__)


async def handle_merchant_events(ctx: WorkerContext, events: list[EventT]) -> list[Delivery]:
    assert ctx.merchant is not None
    for event in events:
        metrics.RECORDS_IN.labels(topic=event.message.topic).inc()
    try:
        outputs = await merchant_stage(
            [event.value for event in events],
            ctx.merchant,
            ctx.merchant_policy,
            ctx.versions(),
            ctx.thresholds,
            datetime.now(UTC).date(),
        )
    except Exception as exc:  # a bug in the core: every record of the batch is dead-lettered, not lost
        metrics.AGENT_ERRORS.labels(agent="merchant").inc()
        log.exception("merchant_stage_failed", records=len(events))
        outputs = [Rejection("merchant", type(exc).__name__, str(exc)[:500])] * len(events)
    deliveries: list[Delivery] = []
    for event, output in zip(events, outputs, strict=True):
        message = event.message
        if isinstance(output, Rejection):
            source = SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
            deliveries += await emit_dead_letter(ctx, output, event.key, event.value, source, None, immediate=True)
        else:
            sent_to_llm = output.classification.method in ("llm", "degraded")
            deliveries += await emit_result(
                ctx, output, sent_to_llm=sent_to_llm, received_at=message.timestamp, immediate=True
            )
    return deliveries


def register(ctx: WorkerContext) -> None:
    assert ctx.merchant is not None
    batch_size = ctx.merchant.batch_capacity

    @ctx.app.agent(ctx.topics.merchant, name="payees-merchant")
    async def enrich_with_merchant_data(stream: StreamT) -> None:
        async for events in stream.take_events(batch_size, within=ctx.settings.merchant_batch_wait_s):
            deliveries = await handle_merchant_events(ctx, list(events))
            # A delivery failure raises here, before the batch is acknowledged: redelivered, not lost.
            await asyncio.gather(*deliveries)
