"""The merchant-data stage: business payees the policy allows, looked up at an external provider
in batches on their own topic, so records that need no lookup never wait for one.

The core is ``domain.outcome.merchant_stage_outcomes`` (hand-offs in, one outcome per hand-off
out, the provider called once per batch). Each record's outcome is an awaitable handed to the
delivery layer at once; records are gathered into a provider batch until it is full or
``merchant_batch_wait_s`` has passed. The hand-off offset is committed only after the record's
outputs are acknowledged; a provider failure is a result with ``enrichment.status``
"unavailable", never a lost or stuck record.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord

from agents.observe import observe
from domain.outcome import HandOff, Outcome, merchant_stage_outcomes
from schemas.events import SourcePosition
from streams import metrics
from streams.context import WorkerContext


class MerchantBatches:
    """Hand-offs waiting for their provider call; a batch goes when full or after ``wait_s``."""

    def __init__(self, ctx: WorkerContext, capacity: int, wait_s: float) -> None:
        assert ctx.merchant is not None
        self._ctx = ctx
        self._capacity = capacity
        self._wait_s = wait_s
        self._waiting: list[tuple[HandOff, int, asyncio.Future[Outcome]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    def add(self, record: ConsumerRecord) -> asyncio.Future[Outcome]:
        metrics.child(metrics.RECORDS_IN, record.topic).inc()
        position = SourcePosition(topic=record.topic, partition=record.partition, offset=record.offset)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._waiting.append((HandOff(record.key, record.value, position), record.timestamp, future))
        if len(self._waiting) >= self._capacity:
            self._send()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._wait_s, self._send)
        return future

    def _send(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.ensure_future(self._look_up(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _look_up(self, batch: list[tuple[HandOff, int, asyncio.Future[Outcome]]]) -> None:
        ctx = self._ctx
        assert ctx.merchant is not None
        try:
            hand_offs = [hand_off for hand_off, _, _ in batch]
            today = datetime.now(UTC).date()
            outcomes = await merchant_stage_outcomes(hand_offs, ctx.merchant, ctx.versions(), ctx.core, today)
        except Exception as error:  # a bug: the delivery layer stalls these partitions (fail closed)
            metrics.AGENT_ERRORS.labels(agent="merchant").inc()
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, received_at_ms, future), outcome in zip(batch, outcomes, strict=True):
            observe(outcome, received_at_ms)
            if not future.done():  # cancelled when its partition was revoked
                future.set_result(outcome)


def register(ctx: WorkerContext) -> None:
    assert ctx.merchant is not None
    batches = MerchantBatches(ctx, ctx.merchant.batch_capacity, ctx.settings.merchant_batch_wait_s)
    ctx.source.route(ctx.settings.topic_merchant, batches.add)
