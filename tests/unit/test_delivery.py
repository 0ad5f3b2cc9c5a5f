"""The delivery layer against a producer whose acknowledgements the test controls."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

from domain.outcome import Outcome, OutputRecord
from streams.delivery import Delivery, DeliveryPolicy

TP = TopicPartition("payees.raw", 0)
TOPICS = {"enriched": "payees.enriched", "review": "payees.review", "audit": "payees.audit", "dlq": "payees.dlq", "llm": "payees.llm"}
POLICY = DeliveryPolicy(max_message_bytes=10_000, retry_initial_s=0.01, retry_max_s=0.05, stall_after_s=0.1)


class FakeBatch:
    """A producer batch: takes records until ``capacity`` (an empty batch takes any record)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[bytes] = []
        self.closed = False

    def append(self, *, timestamp: object, key: bytes | None, value: bytes, headers: object) -> object | None:
        if self.closed or (self.records and len(self.records) >= self.capacity):
            return None
        self.records.append(value)
        return object()

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Acknowledges batches when told to; rejects batches to ``rejecting`` topics."""

    def __init__(self, batch_capacity: int = 1000) -> None:
        self.rejecting: set[str] = set()
        self.hold = False
        self.held: list[asyncio.Future[object]] = []
        self.delivered: list[tuple[str, bytes]] = []
        self.batches: list[tuple[str, int, list[bytes]]] = []
        self.batch_capacity = batch_capacity

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    class _metadata:  # noqa: N801 - aiokafka's cluster metadata, as far as delivery reads it
        @staticmethod
        def partitions_for_topic(topic: str) -> set[int]:
            return {0, 1}

        available_partitions_for_topic = partitions_for_topic

    @staticmethod
    def _partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        return all_partitions[len(key or b"") % len(all_partitions)]

    def create_batch(self) -> FakeBatch:
        return FakeBatch(self.batch_capacity)

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[object]:
        assert batch.closed
        self.batches.append((topic, partition, list(batch.records)))
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        delivered = [(topic, value) for value in batch.records]
        if topic in self.rejecting:
            future.set_exception(MessageSizeTooLargeError("rejected by the broker"))
        elif self.hold:
            self.held.append(future)
            future.add_done_callback(lambda f: f.exception() is None and self.delivered.extend(delivered))
        else:
            future.set_result(None)
            self.delivered.extend(delivered)
        return future


def outcome(value: bytes, size: int = 10) -> Outcome:
    return Outcome(outputs=(OutputRecord("enriched", b"k", value + b"x" * size, ()), OutputRecord("audit", b"k", value, ())))


async def settle(seconds: float = 0.05) -> None:
    await asyncio.sleep(seconds)


async def test_offsets_become_committable_in_order_only_when_everything_before_is_acknowledged():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    producer.hold = True
    delivery.submit(TP, 10, outcome(b"a"))
    delivery.submit(TP, 11, outcome(b"b"))
    await settle()
    assert delivery.committable() == {} and delivery.in_flight(TP) == 2
    # The second record's outputs are acknowledged first: still nothing to commit.
    for future in producer.held[2:]:
        future.set_result(None)
    await settle()
    assert delivery.committable() == {}
    producer.held[0].set_result(None)
    await settle()
    assert delivery.committable() == {}  # one output of offset 10 is still unacknowledged
    producer.held[1].set_result(None)
    await settle()
    assert delivery.committable() == {TP: 12} and delivery.in_flight(TP) == 0


async def test_a_rejected_delivery_stalls_its_partition_and_resumes_when_the_cause_is_removed():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    other = TopicPartition("payees.raw", 1)
    delivery.submit(TP, 0, outcome(b"ok"))
    await settle()
    producer.rejecting = {"payees.audit"}
    delivery.submit(TP, 1, outcome(b"rejected"))
    delivery.submit(TP, 2, outcome(b"after"))
    delivery.submit(other, 5, Outcome(outputs=(OutputRecord("enriched", b"k", b"v", ()),)))
    await settle(0.3)
    assert TP in delivery.stalled and "MessageSizeTooLargeError" in delivery.stalled[TP]
    assert other not in delivery.stalled
    # Never past the failed record, whatever came after it.
    assert delivery.committable() == {TP: 1, other: 6}
    producer.rejecting = set()
    await settle(0.3)
    assert delivery.stalled == {}
    assert delivery.committable() == {TP: 3, other: 6}
    audit_values = [value for topic, value in producer.delivered if topic == "payees.audit"]
    assert audit_values.count(b"rejected") == 1  # retried until it went through, once


async def test_an_output_over_the_message_size_is_never_sent():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    delivery.submit(TP, 0, outcome(b"big", size=20_000))
    await settle(0.3)
    assert "OutputTooLarge" in delivery.stalled[TP]
    assert delivery.committable() == {}
    assert all(len(value) < 10_000 for _, value in producer.delivered)
    delivery.forget([TP])
    assert delivery.stalled == {} and delivery.in_flight(TP) == 0


async def test_an_awaitable_outcome_is_delivered_in_its_place():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    gate = asyncio.Event()

    async def slow() -> Outcome:
        await gate.wait()
        return outcome(b"slow")

    delivery.submit(TP, 0, slow())
    delivery.submit(TP, 1, outcome(b"fast"))
    await settle()
    assert delivery.committable() == {}
    gate.set()
    assert await delivery.drain([TP], timeout_s=1)
    assert delivery.committable() == {TP: 2}


async def test_drain_is_bounded():
    producer = FakeProducer()
    producer.hold = True
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    delivery.submit(TP, 0, outcome(b"never acknowledged"))
    assert not await delivery.drain([TP], timeout_s=0.05)
    delivery.forget([TP])
    assert delivery.committable() == {}


async def test_timeouts_are_retried_without_losing_the_record():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    failures = iter([True, True, False, False])
    original = producer.send_batch

    async def flaky(batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[object]:
        if next(failures, False):
            raise KafkaTimeoutError()
        return await original(batch, topic, partition=partition)

    producer.send_batch = flaky  # type: ignore[method-assign]
    delivery.submit(TP, 0, outcome(b"r"))
    assert await delivery.drain([TP], timeout_s=1)
    assert delivery.committable() == {TP: 1}
    assert sorted(topic for topic, _ in producer.delivered) == ["payees.audit", "payees.enriched"]


async def test_outputs_go_out_as_one_batch_per_topic_partition_placed_by_the_partitioner():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    batch = [
        (offset, Outcome(outputs=(OutputRecord("enriched", key, key, ()), OutputRecord("audit", key, key, ()))))
        for offset, key in enumerate([b"a", b"bb", b"c", b"dd", b"e"])
    ]
    delivery.submit_batch(TP, batch)
    assert await delivery.drain([TP], timeout_s=1)
    # The fake partitioner puts odd-length keys on 1, even-length ones on 0.
    assert sorted(producer.batches) == [
        ("payees.audit", 0, [b"bb", b"dd"]),
        ("payees.audit", 1, [b"a", b"c", b"e"]),
        ("payees.enriched", 0, [b"bb", b"dd"]),
        ("payees.enriched", 1, [b"a", b"c", b"e"]),
    ]
    assert delivery.committable() == {TP: 5}


async def test_every_output_of_a_failed_batch_is_sent_again_and_none_is_skipped():
    producer = FakeProducer(batch_capacity=2)  # five outputs to one partition: three batches
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    original = producer.send_batch
    calls = 0

    async def second_batch_fails_once(batch: FakeBatch, topic: str, *, partition: int) -> asyncio.Future[object]:
        nonlocal calls
        calls += 1
        future = await original(batch, topic, partition=partition)
        if calls == 2:
            failing: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            failing.set_exception(KafkaTimeoutError())
            producer.delivered = [item for item in producer.delivered if item[1] not in batch.records]
            return failing
        return future

    producer.send_batch = second_batch_fails_once  # type: ignore[method-assign]
    values = [f"r{i}".encode() for i in range(5)]
    delivery.submit_batch(TP, [(i, Outcome(outputs=(OutputRecord("enriched", b"k", value, ()),))) for i, value in enumerate(values)])
    assert await delivery.drain([TP], timeout_s=1)
    assert [len(records) for _, _, records in producer.batches] == [2, 2, 1, 2]
    assert producer.batches[1][2] == producer.batches[3][2]  # the failed batch, again and whole
    assert sorted(value for _, value in producer.delivered) == values  # each once
    assert delivery.committable() == {TP: 5}


async def test_an_output_too_large_fails_alone_and_the_rest_of_the_record_is_not_lost():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    big = Outcome(outputs=(OutputRecord("enriched", b"k", b"x" * 20_000, ()), OutputRecord("audit", b"k", b"fits", ())))
    delivery.submit(TP, 0, big)
    await settle(0.3)
    assert "OutputTooLarge" in delivery.stalled[TP] and delivery.committable() == {}
    assert producer.delivered == [("payees.audit", b"fits")]  # sent once, not again with each retry


async def test_a_send_round_that_fails_unexpectedly_is_retried_and_loses_nothing():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    original = delivery._send_round  # noqa: SLF001 - a bug inside a round, injected
    failures = iter([True])

    async def buggy(requests):  # type: ignore[no-untyped-def]
        if next(failures, False):
            raise RuntimeError("a bug in the round")
        await original(requests)

    delivery._send_round = buggy  # type: ignore[method-assign]
    delivery.submit(TP, 0, outcome(b"r"))
    assert await delivery.drain([TP], timeout_s=1)  # not hung on a round that died
    assert delivery.committable() == {TP: 1}
    assert sorted(topic for topic, _ in producer.delivered) == ["payees.audit", "payees.enriched"]


async def test_a_sender_cancelled_mid_round_fails_its_requests_and_a_new_one_sends_them():
    producer = FakeProducer()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    original = delivery._send_round  # noqa: SLF001
    stuck = asyncio.Event()
    calls = 0

    async def first_round_hangs(requests):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            stuck.set()
            await asyncio.Event().wait()  # until cancelled
        await original(requests)

    delivery._send_round = first_round_hangs  # type: ignore[method-assign]
    delivery.submit(TP, 0, outcome(b"r"))
    await asyncio.wait_for(stuck.wait(), 1)
    delivery._sender.cancel()  # noqa: SLF001 - the sender dies with a round in hand
    assert await delivery.drain([TP], timeout_s=1)  # the round's request failed, was retried by a new sender
    assert delivery.committable() == {TP: 1}
    assert sorted(topic for topic, _ in producer.delivered) == ["payees.audit", "payees.enriched"]


async def test_a_key_is_placed_by_each_topics_own_partitions():
    class UnevenTopics(FakeProducer):
        """payees.audit has three partitions, every other topic two."""

        class _metadata:  # noqa: N801
            @staticmethod
            def partitions_for_topic(topic: str) -> set[int]:
                return {0, 1, 2} if topic == "payees.audit" else {0, 1}

            available_partitions_for_topic = partitions_for_topic

    producer = UnevenTopics()
    delivery = Delivery(producer, TOPICS, POLICY)  # type: ignore[arg-type]
    key = b"abcd"  # the fake partitioner: len(key) % partitions → 0 of two, 1 of three
    delivery.submit(TP, 0, Outcome(outputs=(OutputRecord("enriched", key, b"r", ()), OutputRecord("audit", key, b"a", ()))))
    assert await delivery.drain([TP], timeout_s=1)
    assert sorted((topic, partition) for topic, partition, _ in producer.batches) == [
        ("payees.audit", 1), ("payees.enriched", 0),
    ]
