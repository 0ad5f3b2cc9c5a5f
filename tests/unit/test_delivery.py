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


class FakeProducer:
    """Acknowledges sends when told to; rejects sends to ``rejecting`` topics."""

    def __init__(self) -> None:
        self.rejecting: set[str] = set()
        self.hold = False
        self.held: list[asyncio.Future[object]] = []
        self.delivered: list[tuple[str, bytes]] = []

    async def send(self, topic: str, value: bytes, key: bytes | None = None, headers: object = None) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if topic in self.rejecting:
            future.set_exception(MessageSizeTooLargeError("rejected by the broker"))
        elif self.hold:
            self.held.append(future)
            future.add_done_callback(lambda _: self.delivered.append((topic, value)))
        else:
            future.set_result(None)
            self.delivered.append((topic, value))
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
    original = producer.send

    async def flaky(topic: str, value: bytes, key: bytes | None = None, headers: object = None) -> asyncio.Future[object]:
        if next(failures, False):
            raise KafkaTimeoutError()
        return await original(topic, value, key=key, headers=headers)

    producer.send = flaky  # type: ignore[method-assign]
    delivery.submit(TP, 0, outcome(b"r"))
    assert await delivery.drain([TP], timeout_s=1)
    assert delivery.committable() == {TP: 1}
    assert sorted(topic for topic, _ in producer.delivered) == ["payees.audit", "payees.enriched"]
