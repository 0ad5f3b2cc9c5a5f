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
import functools
import random
import time
from collections import deque
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerClosed

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


class _SendRequest:
    """One ``_send_all`` call: its outputs, answered with those that failed once every one of
    them has a result."""

    __slots__ = ("outputs", "result", "failures", "waiting")

    def __init__(self, outputs: list[OutputRecord], result: asyncio.Future[list[tuple[OutputRecord, BaseException]]]) -> None:
        self.outputs = outputs
        self.result = result
        self.failures: list[tuple[OutputRecord, BaseException]] = []
        self.waiting = 0

    def failed(self, output: OutputRecord, error: BaseException) -> None:
        self.failures.append((output, error))

    def settle(self) -> None:
        if self.waiting == 0 and not self.result.done():
            self.result.set_result(self.failures)

    def fail_all(self, error: BaseException) -> None:
        if not self.result.done():
            self.result.set_result([(output, error) for output in self.outputs])


_Member = tuple[OutputRecord, _SendRequest]
# A topic's partitions: all of them and the available ones, in the producer's metadata order.
_Layout = tuple[tuple[int, ...], tuple[int, ...]]


def _batch_failed(members: list[_Member], error: BaseException) -> None:
    for output, request in members:
        request.failed(output, error)
        request.waiting -= 1
        request.settle()


def _batch_done(topic: str, members: list[_Member], future: asyncio.Future[object]) -> None:
    error = future.exception() if not future.cancelled() else ProducerClosed()
    if error is not None:
        _batch_failed(members, error)
        return
    metrics.child(metrics.RECORDS_OUT, topic).inc(len(members))
    for _, request in members:
        request.waiting -= 1
        request.settle()


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
        self._outbox: list[_SendRequest] = []
        self._wakeup = asyncio.Event()
        self._sender: asyncio.Future[None] | None = None

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
        if self._sender is not None:
            self._sender.cancel()

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
        # Only the bytes wait for acknowledgements, not the results' models (less for the GC).
        del outcomes, resolved
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

        The outputs join the next send round (``_send_rounds``), which puts the outputs of every
        record submitted meanwhile, of all source partitions, into one record batch per topic
        partition."""
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_rounds())
        request = _SendRequest(outputs, asyncio.get_running_loop().create_future())
        self._outbox.append(request)
        self._wakeup.set()
        return await asyncio.shield(request.result)

    async def _send_rounds(self) -> None:
        """One task sends for every record: each round takes all outputs waiting, as one record
        batch per topic partition (``send_batch``: one future per batch, not one per output),
        and does not wait for the round's acknowledgements before the next (the producer lets a
        topic partition's next batch in once the last one is on its way)."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            requests, self._outbox = self._outbox, []
            try:
                await self._send_round(requests)
            except asyncio.CancelledError:
                for request in requests:
                    request.fail_all(ProducerClosed())
                raise
            except Exception as error:  # noqa: BLE001 - a bug here fails the round; it is retried
                for request in requests:
                    request.fail_all(error)

    async def _send_round(self, requests: list[_SendRequest]) -> None:
        by_partition: dict[tuple[str, int], list[tuple[OutputRecord, _SendRequest]]] = {}
        # A topic's metadata is awaited once per round (as send would for each output): a topic
        # the broker refuses fails all its outputs at once, not one request timeout each.
        layouts: dict[str, _Layout | BaseException] = {}
        # The partitioner's answer depends on the key and the partition lists only: a record's
        # outputs to topics of the same layout (result, review copy, audit event) hash once.
        placed: dict[tuple[bytes, _Layout], int] = {}
        partitioner = self._producer._partitioner  # noqa: SLF001 - the one send uses
        for request in requests:
            for output in request.outputs:
                try:
                    if output.size > self._policy.max_message_bytes:
                        raise OutputTooLarge(f"{output.role} output of {output.size} bytes")
                    topic = self._topics[output.role]
                    if topic not in layouts:
                        layouts[topic] = await self._layout(topic)
                    layout = layouts[topic]
                    if isinstance(layout, BaseException):
                        raise layout
                    if output.key is None:  # the default partitioner picks at random
                        partition = partitioner(None, list(layout[0]), list(layout[1]))
                    else:
                        partition = placed.get((output.key, layout))  # type: ignore[assignment]
                        if partition is None:
                            partition = placed[(output.key, layout)] = partitioner(
                                output.key, list(layout[0]), list(layout[1])
                            )
                except Exception as error:  # noqa: BLE001 - every failure is retried, none skipped
                    request.failed(output, error)
                    continue
                request.waiting += 1
                by_partition.setdefault((topic, partition), []).append((output, request))
        for request in requests:
            request.settle()  # those with nothing to send (every output failed) are answered now
        # Concurrently per topic partition: one whose last batch is not yet on its way (the
        # producer takes one at a time per topic partition) holds up the others' sends in this
        # round only; the next round waits for this one, so a slow leader paces every partition
        # for up to the request timeout (as plain sends do, once the producer's buffer is full).
        await asyncio.gather(*(self._send_partition(tp, members) for tp, members in by_partition.items()))

    async def _send_partition(self, tp: tuple[str, int], members: list[_Member]) -> None:
        topic, partition = tp
        try:
            batches = self._record_batches(members)
        except Exception as error:  # noqa: BLE001
            _batch_failed(members, error)
            return
        for batch, batch_members in batches:
            try:
                future = await self._producer.send_batch(batch, topic, partition=partition)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001
                _batch_failed(batch_members, error)
                continue
            future.add_done_callback(functools.partial(_batch_done, topic, batch_members))

    async def _layout(self, topic: str) -> _Layout | BaseException:
        """The topic's partitions, all and available, as ``send`` hands them to the producer's
        partitioner (``AIOKafkaProducer._partition``), after waiting for its metadata as ``send``
        does; the error if the metadata is not to be had."""
        try:
            await self._producer.partitions_for(topic)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001
            return error
        metadata = self._producer._metadata  # noqa: SLF001
        return tuple(metadata.partitions_for_topic(topic)), tuple(metadata.available_partitions_for_topic(topic))

    def _record_batches(self, members: list[_Member]) -> list[tuple[object, list[_Member]]]:
        """The outputs in as few producer batches as the batch size allows, each closed (sent
        without lingering: the round has all there is)."""
        batches: list[tuple[object, list[_Member]]] = []
        batch, in_batch = self._producer.create_batch(), []
        for member in members:
            output = member[0]
            headers = list(output.headers)  # the C record builder takes a list only
            appended = batch.append(timestamp=None, key=output.key, value=output.value, headers=headers)
            if appended is None:  # full: the next batch takes it (an empty batch takes any record)
                batch.close()
                batches.append((batch, in_batch))
                batch, in_batch = self._producer.create_batch(), []
                batch.append(timestamp=None, key=output.key, value=output.value, headers=headers)
            in_batch.append(member)
        batch.close()
        batches.append((batch, in_batch))
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
