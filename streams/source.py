"""The worker's consumer loop: source records → agents' handlers → delivery → commit.

One aiokafka group consumer reads every source topic (``payees.raw``, the LLM hand-off). For each
record, the handler registered for its topic returns an ``Outcome`` (or an awaitable of one, for
the LLM stage) and the loop hands it to the delivery layer. Offsets are committed every
``commit_interval_s``, and only as far as the delivery layer says every output is acknowledged.

A partition is paused through the consumer, never by holding a record or blocking the loop, for
any of these reasons: its in-flight window is full (backpressure), its delivery is stalled (fail
closed), or the poison-flood guard tripped. Records already fetched for a paused partition wait
in a small per-partition buffer; a rebalance drops them with the partition (they are not
committed, so the next owner reads them), after giving the partition's deliveries a bounded time
to finish so that the hand-over never outlasts the session timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service

from domain.dead_letter_guard import DeadLetterGuard
from domain.outcome import Outcome, Role
from streams import metrics
from streams.delivery import Delivery, DeliveryPolicy

log = structlog.get_logger(__name__)

Handler = Callable[[ConsumerRecord], Outcome | Awaitable[Outcome]]

BACKPRESSURE = "backpressure"
DELIVERY_STALLED = "delivery_stalled"
DEAD_LETTER_GUARD = "dead_letter_guard"
PAUSE_REASONS = (BACKPRESSURE, DELIVERY_STALLED, DEAD_LETTER_GUARD)
# CPU work between two yields to the event loop (web, heartbeats, deliveries).
SLICE_S = 0.02


class SourceLoop(Service):
    def __init__(
        self,
        consumer_factory: Callable[[], AIOKafkaConsumer],
        producer_factory: Callable[[], AIOKafkaProducer],
        topics: Mapping[Role, str],
        policy: DeliveryPolicy,
        guard: DeadLetterGuard,
        guard_action: str,
        commit_interval_s: float,
        max_in_flight_per_partition: int,
        revoke_budget_s: float,
        wait_before_start: Callable[[], Awaitable[None]],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._consumer_factory = consumer_factory
        self._producer_factory = producer_factory
        self._topics = topics
        self._policy = policy
        self._guard = guard
        self._guard_action = guard_action
        self._commit_interval_s = commit_interval_s
        self._max_in_flight = max_in_flight_per_partition
        self._revoke_budget_s = revoke_budget_s
        self._wait_before_start = wait_before_start
        self._handlers: dict[str, tuple[Handler, bool]] = {}
        self._buffered: dict[TopicPartition, deque[ConsumerRecord]] = defaultdict(deque)
        self._paused: dict[TopicPartition, set[str]] = defaultdict(set)
        self._committed: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.delivery: Delivery | None = None
        self.rebalancing = False
        self.started_consuming = False
        # Moves on at every revocation: work read before it belongs to the old assignment.
        self._generation = 0

    def route(self, topic: str, handler: Handler, guarded: bool = False) -> None:
        """Send records of ``topic`` to ``handler``; ``guarded`` ones count for the poison-flood guard."""
        self._handlers[topic] = (handler, guarded)

    # -- state for /ready and metrics ----------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    def committed(self, tp: TopicPartition) -> int | None:
        return self._committed.get(tp)

    @property
    def stalled(self) -> dict[str, str]:
        stalled = self.delivery.stalled if self.delivery else {}
        return {f"{tp.topic}:{tp.partition}": reason for tp, reason in stalled.items()}

    @property
    def guard_tripped(self) -> bool:
        return self._guard.tripped

    def paused(self) -> dict[str, list[str]]:
        return {f"{tp.topic}:{tp.partition}": sorted(r) for tp, r in self._paused.items() if r}

    # -- the poison-flood guard ----------------------------------------------------------------

    def resume_after_guard(self) -> None:
        self._guard.reset()
        metrics.DLQ_GUARD_TRIPPED.set(0)
        for tp in list(self._paused):
            self._unpause(tp, DEAD_LETTER_GUARD)
        log.warning("dead_letter_guard_resumed")

    def _count(self, tp: TopicPartition, outcome: Outcome | Awaitable[Outcome]) -> None:
        dead = isinstance(outcome, Outcome) and outcome.dead_lettered
        if not self._guard.record(dead):
            return
        metrics.DLQ_GUARD_TRIPPED.set(1)
        log.error("dead_letter_guard_tripped", ratio=round(self._guard.ratio, 3), action=self._guard_action)
        if self._guard_action == "pause":
            for guarded in self._guarded_assignment():
                self._pause(guarded, DEAD_LETTER_GUARD)

    def _guarded_assignment(self) -> list[TopicPartition]:
        return [tp for tp in self.assignment() if self._handlers.get(tp.topic, (None, False))[1]]

    # -- pausing ---------------------------------------------------------------------------------

    def _pause(self, tp: TopicPartition, reason: str) -> None:
        reasons = self._paused[tp]
        if reason in reasons:
            return
        reasons.add(reason)
        if self.consumer is not None and tp in self.consumer.assignment():
            self.consumer.pause(tp)
        self._paused_metrics()

    def _unpause(self, tp: TopicPartition, reason: str) -> None:
        reasons = self._paused.get(tp)
        if not reasons or reason not in reasons:
            return
        reasons.discard(reason)
        if not reasons and self.consumer is not None and tp in self.consumer.assignment():
            self.consumer.resume(tp)
        self._paused_metrics()

    def _paused_metrics(self) -> None:
        for reason in PAUSE_REASONS:
            metrics.PAUSED_PARTITIONS.labels(reason=reason).set(sum(reason in r for r in self._paused.values()))

    def _review_pauses(self) -> None:
        """Lift backpressure and stall pauses whose cause is gone; pause newly stalled partitions."""
        assert self.delivery is not None
        for tp in self.assignment():
            if tp in self.delivery.stalled:
                self._pause(tp, DELIVERY_STALLED)
            else:
                self._unpause(tp, DELIVERY_STALLED)
            if self.delivery.in_flight(tp) <= self._max_in_flight // 2:
                self._unpause(tp, BACKPRESSURE)

    # -- rebalancing -----------------------------------------------------------------------------

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.rebalancing = True
        self._generation += 1
        assert self.delivery is not None
        # Bounded: the group waits for this member; what is not delivered by then is read
        # again by the partition's next owner from the committed offset.
        await self.delivery.drain(revoked, self._revoke_budget_s)
        await self._commit(only=revoked)
        self.delivery.forget(revoked)
        for tp in revoked:
            self._buffered.pop(tp, None)
            self._paused.pop(tp, None)
            self._committed.pop(tp, None)
        self._paused_metrics()

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            self._paused.pop(tp, None)
            if self._guard.tripped and self._guard_action == "pause" and self._handlers.get(tp.topic, (None, False))[1]:
                self._pause(tp, DEAD_LETTER_GUARD)
        self.rebalancing = False
        self._paused_metrics()

    # -- the loop --------------------------------------------------------------------------------

    @Service.task
    async def _run(self) -> None:
        await self._wait_before_start()
        producer = self._producer_factory()
        await producer.start()
        self.delivery = Delivery(producer, self._topics, self._policy)
        consumer = self.consumer = self._consumer_factory()
        consumer.subscribe(list(self._handlers), listener=_Listener(self))
        await consumer.start()
        self.started_consuming = True
        last_commit = time.monotonic()
        try:
            while not self.should_stop:
                fetched = await consumer.getmany(timeout_ms=50, max_records=self._max_in_flight)
                for tp, records in fetched.items():
                    self._buffered[tp].extend(records)
                await self._process_buffered()
                self._review_pauses()
                if time.monotonic() - last_commit >= self._commit_interval_s:
                    await self._commit()
                    last_commit = time.monotonic()
        finally:
            await self.delivery.close(self._revoke_budget_s)
            await self._commit()
            await consumer.stop()
            await producer.stop()

    async def _process_buffered(self) -> None:
        """Handle buffered records of open partitions; each partition's run of records goes to
        delivery as one batch (cut at the in-flight limit and at every yield to the loop)."""
        assert self.delivery is not None
        generation = self._generation
        slice_started = time.monotonic()
        for tp, records in list(self._buffered.items()):
            handler, guarded = self._handlers[tp.topic]
            batch: list[tuple[int, Outcome | Awaitable[Outcome]]] = []
            room = self._max_in_flight - self.delivery.in_flight(tp)
            while records and not self._paused.get(tp):
                record = records.popleft()
                outcome = handler(record)
                batch.append((record.offset, outcome))
                if guarded:
                    self._count(tp, outcome)
                if len(batch) >= room:
                    self._pause(tp, BACKPRESSURE)
                if time.monotonic() - slice_started >= SLICE_S:
                    self.delivery.submit_batch(tp, batch)
                    batch = []
                    room = self._max_in_flight - self.delivery.in_flight(tp)
                    await asyncio.sleep(0)
                    slice_started = time.monotonic()
                    if self._generation != generation:
                        # A rebalance ran meanwhile: these records were read under the old
                        # assignment. Not submitted, not committed: read again by the owner.
                        return
            self.delivery.submit_batch(tp, batch)
            if not records:
                del self._buffered[tp]

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        assert self.delivery is not None and self.consumer is not None
        owned = self.consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self.delivery.committable().items()
            if tp in owned and (only is None or tp in only) and self._committed.get(tp) != offset
        }
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as error:
            # Not committed means read again after a restart: duplicates under the same ids.
            log.warning("commit_failed", error_type=type(error).__name__, partitions=len(offsets))
            return
        self._committed.update(offsets)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, loop: SourceLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._loop.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._loop.on_assigned(set(assigned))

