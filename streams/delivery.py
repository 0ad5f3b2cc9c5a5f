"""The delivery layer: publishes the outcomes of source records and says which source offsets
may be committed. Every agent hands its outcomes to one ``Delivery``.

Interface (all an agent or a consumer loop needs)::

    delivery = Delivery(producer, topics={"enriched": "payees.enriched", ...}, policy=DeliveryPolicy(...))
    delivery.submit_batch(tp, [(offset, outcome), ...])   # consecutive records of one partition
    delivery.submit(tp, offset, outcome)      # the same for one record
                                              # outcome: Outcome, or an awaitable of one
    delivery.in_flight(tp)                    # records of tp submitted and not yet committable
    delivery.committable()                    # {tp: next offset to commit}; only what is delivered
    delivery.stalled                          # {tp: reason} for partitions whose delivery failed
    await delivery.drain(tps, timeout_s)      # wait for tps' deliveries (rebalance, shutdown)
    delivery.forget(tps)                      # drop the bookkeeping of revoked partitions

``submit`` never blocks: the caller bounds work in flight per partition with ``in_flight`` and
pauses a partition that is full (backpressure, as Arroyo's ``MessageRejected``). A batch is
delivered as a unit (one task; its outputs go out as one record batch per topic partition) and
becomes committable as a whole.

Guarantees, per source partition:

* outputs go straight to the aiokafka producer, one record batch per topic partition placed
  by the producer's own partitioner (as ``send`` would place each output), and every batch's
  result is checked; a failed batch is sent again whole;
* the committable offset moves forward strictly in source order: offset N becomes committable
  only when every output of N and of every record before N was acknowledged by the broker;
* a failed send is retried with capped exponential backoff and jitter, for as long as it
  takes. A record still failing after ``policy.stall_after_s`` stalls its partition (``stalled``
  names the error; the ``payee_stream_delivery_stalled_partitions`` gauge alerts); the caller
  stops consuming it. Nothing after it is ever committed; when the cause is removed, the retry
  succeeds, the stall clears and the partition goes on where it stopped;
* an output over ``policy.max_message_bytes`` is never sent (the core already keeps outputs
  within it; one that is not is a bug and stalls the partition, never skips the record).

Outputs of a record may reach consumers more than once (at-least-once: a crash before the
commit repeats them under the same event ids) and, after a retry, after those of a later record;
order keys on the events let consumers keep the newest (README, "Delivery guarantees").
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition

from domain.outcome import Outcome, OutputRecord, Role
from streams import metrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DeliveryPolicy:
    max_message_bytes: int
    retry_initial_s: float = 0.1
    retry_max_s: float = 5.0
    stall_after_s: float = 10.0


class OutputTooLarge(Exception):
    """An output the core should have kept within the message size."""


@dataclass
class _Pending:
    """A batch of consecutive source records, ``first``..``last``."""

    first: int
    last: int
    records: int
    done: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class _Partition:
    queue: deque[_Pending] = field(default_factory=deque)
    in_flight: int = 0
    committable: int | None = None
    failing: dict[int, str] = field(default_factory=dict)


def retry_delay(attempt: int, initial_s: float, max_s: float) -> float:
    ceiling = min(max_s, initial_s * 2**attempt)
    return ceiling / 2 + random.random() * ceiling / 2


async def resolve_all(outcomes: list[Outcome | Awaitable[Outcome]]) -> list[Outcome]:
    """The outcomes, awaiting the awaitable ones concurrently (the LLM stage's calls)."""
    waiting = [outcome for outcome in outcomes if not isinstance(outcome, Outcome)]
    if not waiting:
        return outcomes  # type: ignore[return-value]
    done = iter(await asyncio.gather(*waiting))
    return [outcome if isinstance(outcome, Outcome) else next(done) for outcome in outcomes]


class Delivery:
    def __init__(self, producer: AIOKafkaProducer, topics: Mapping[Role, str], policy: DeliveryPolicy) -> None:
        self._producer = producer
        self._topics = dict(topics)
        self._policy = policy
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._stalled: dict[TopicPartition, str] = {}

    # -- interface -------------------------------------------------------------------------

    def submit_batch(self, tp: TopicPartition, batch: Sequence[tuple[int, Outcome | Awaitable[Outcome]]]) -> None:
        if not batch:
            return
        partition = self._partitions.setdefault(tp, _Partition())
        pending = _Pending(first=batch[0][0], last=batch[-1][0], records=len(batch))
        partition.queue.append(pending)
        partition.in_flight += len(batch)
        pending.task = asyncio.ensure_future(self._deliver(tp, partition, pending, [outcome for _, outcome in batch]))
        metrics.DELIVERY_IN_FLIGHT.inc(len(batch))

    def submit(self, tp: TopicPartition, offset: int, outcome: Outcome | Awaitable[Outcome]) -> None:
        self.submit_batch(tp, [(offset, outcome)])

    def in_flight(self, tp: TopicPartition) -> int:
        partition = self._partitions.get(tp)
        return partition.in_flight if partition else 0

    def committable(self) -> dict[TopicPartition, int]:
        return {tp: p.committable for tp, p in self._partitions.items() if p.committable is not None}

    @property
    def stalled(self) -> Mapping[TopicPartition, str]:
        return self._stalled

    async def drain(self, tps: Iterable[TopicPartition], timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every submitted record of ``tps``; True if all are done."""
        tasks = [
            pending.task
            for tp in tps
            if tp in self._partitions
            for pending in self._partitions[tp].queue
            if pending.task is not None and not pending.task.done()
        ]
        if not tasks:
            return True
        _, not_done = await asyncio.wait(tasks, timeout=timeout_s)
        return not not_done

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Partitions this worker no longer owns: stop their deliveries and bookkeeping. The
        new owner starts from the committed offset, so nothing undelivered is lost."""
        for tp in tps:
            partition = self._partitions.pop(tp, None)
            if partition is None:
                continue
            for pending in partition.queue:
                if pending.task is not None and not pending.task.done():
                    pending.task.cancel()
            metrics.DELIVERY_IN_FLIGHT.dec(partition.in_flight)
            self._set_stalled(tp, None)

    async def close(self, timeout_s: float) -> None:
        await self.drain(list(self._partitions), timeout_s)
        self.forget(list(self._partitions))

    # -- internals -------------------------------------------------------------------------

    async def _deliver(
        self,
        tp: TopicPartition,
        partition: _Partition,
        pending: _Pending,
        outcomes: list[Outcome | Awaitable[Outcome]],
    ) -> None:
        try:
            resolved = await resolve_all(outcomes)
        except Exception as error:  # a handler bug: fail closed, never skip the record
            log.exception("outcome_failed", source_topic=tp.topic, source_partition=tp.partition, source_offset=pending.first)
            partition.failing[pending.first] = f"outcome failed: {type(error).__name__}"
            self._set_stalled(tp, partition.failing[pending.first])
            return
        remaining = [output for outcome in resolved for output in outcome.outputs]
        started = time.monotonic()
        attempt = 0
        while remaining:
            failed = await self._send_all(remaining)
            if not failed:
                break
            remaining = [output for output, _ in failed]
            error = failed[0][1]
            reason = f"{type(error).__name__}: {error}"[:300]
            metrics.DELIVERY_RETRIES.labels(topic=self._topics.get(remaining[0].role, "?")).inc()
            if time.monotonic() - started >= self._policy.stall_after_s and pending.first not in partition.failing:
                partition.failing[pending.first] = reason
                self._set_stalled(tp, reason)
            delay = retry_delay(attempt, self._policy.retry_initial_s, self._policy.retry_max_s)
            log.warning(
                "delivery_failed",
                source_topic=tp.topic,
                source_partition=tp.partition,
                source_offset=pending.first,
                records=pending.records,
                attempt=attempt + 1,
                retry_in_s=round(delay, 2),
                error=reason,
            )
            attempt += 1
            await asyncio.sleep(delay)
        if partition.failing.pop(pending.first, None) is not None:
            log.warning("delivery_recovered", source_topic=tp.topic, source_partition=tp.partition)
            self._set_stalled(tp, next(iter(partition.failing.values()), None))
        pending.done = True
        self._advance(partition)

    async def _send_all(self, outputs: list[OutputRecord]) -> list[tuple[OutputRecord, BaseException]]:
        """Send, then await every acknowledgement; the outputs that failed, with their errors.

        Outputs go to the producer as one record batch per topic partition (``send_batch``: one
        future per batch, not one per output), each placed by the producer's own partitioner
        exactly as ``send`` would place it. A batch stands or falls as a whole: every output of
        a failed batch is returned, to be sent again."""
        failed: list[tuple[OutputRecord, BaseException]] = []
        by_partition: dict[tuple[str, int], list[OutputRecord]] = {}
        placed: dict[tuple[str, bytes], int] = {}
        # A topic's metadata is awaited once per call (as send would for each output): a topic
        # the broker refuses fails all its outputs at once, not one request timeout each.
        unavailable: dict[str, BaseException | None] = {}
        for output in outputs:
            try:
                if output.size > self._policy.max_message_bytes:
                    raise OutputTooLarge(f"{output.role} output of {output.size} bytes")
                topic = self._topics[output.role]
                if topic not in unavailable:
                    unavailable[topic] = await self._metadata_error(topic)
                if unavailable[topic] is not None:
                    raise unavailable[topic]  # type: ignore[misc]
                partition = placed.get((topic, output.key)) if output.key is not None else None
                if partition is None:
                    partition = self._producer._partition(topic, None, None, None, output.key, None)  # noqa: SLF001
                    if output.key is not None:
                        placed[(topic, output.key)] = partition
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - every failure is retried, none skipped
                failed.append((output, error))
                continue
            by_partition.setdefault((topic, partition), []).append(output)
        sent: list[tuple[str, list[OutputRecord], asyncio.Future[object]]] = []
        for (topic, partition), records in by_partition.items():
            try:
                batches = self._record_batches(records)
            except Exception as error:  # noqa: BLE001
                failed.extend((output, error) for output in records)
                continue
            for batch, members in batches:
                try:
                    future = await self._producer.send_batch(batch, topic, partition=partition)
                    sent.append((topic, members, future))
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001
                    failed.extend((output, error) for output in members)
        for topic, members, future in sent:
            try:
                await future
                metrics.child(metrics.RECORDS_OUT, topic).inc(len(members))
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001
                failed.extend((output, error) for output in members)
        return failed

    async def _metadata_error(self, topic: str) -> BaseException | None:
        """Wait for the topic's metadata as ``send`` does; the error if it is not to be had.
        Outputs are then placed by the producer's own partitioner, exactly as ``send`` places
        them (``_partition``: murmur2 of the key, as Apache Kafka's default, unless configured)."""
        try:
            await self._producer.partitions_for(topic)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001
            return error
        return None

    def _record_batches(self, records: list[OutputRecord]) -> list[tuple[object, list[OutputRecord]]]:
        """The records in as few producer batches as the batch size allows, each closed (sent
        without lingering: the records came in one go)."""
        batches: list[tuple[object, list[OutputRecord]]] = []
        batch, members = self._producer.create_batch(), []
        for output in records:
            headers = list(output.headers)  # the C record builder takes a list only
            appended = batch.append(timestamp=None, key=output.key, value=output.value, headers=headers)
            if appended is None:  # full: the next batch takes it (an empty batch takes any record)
                batch.close()
                batches.append((batch, members))
                batch, members = self._producer.create_batch(), []
                batch.append(timestamp=None, key=output.key, value=output.value, headers=headers)
            members.append(output)
        batch.close()
        batches.append((batch, members))
        return batches

    def _advance(self, partition: _Partition) -> None:
        queue = partition.queue
        while queue and queue[0].done:
            pending = queue.popleft()
            partition.committable = pending.last + 1
            partition.in_flight -= pending.records
            metrics.DELIVERY_IN_FLIGHT.dec(pending.records)

    def _set_stalled(self, tp: TopicPartition, reason: str | None) -> None:
        if reason is None:
            if self._stalled.pop(tp, None) is not None:
                log.warning("delivery_unstalled", source_topic=tp.topic, source_partition=tp.partition)
        else:
            if tp not in self._stalled:
                log.error("delivery_stalled", source_topic=tp.topic, source_partition=tp.partition, error=reason)
            self._stalled[tp] = reason
        metrics.DELIVERY_STALLED.set(len(self._stalled))
