"""The delivery layer's batched sends on the real (embedded Tansu) broker, with the worker's own
producer: keyed placement is exactly what plain ``send`` (Apache Kafka's default murmur2
partitioner) gives, and a batch the broker refuses is sent again whole, nothing skipped and
nothing that was acknowledged sent twice."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from domain.outcome import Outcome, OutputRecord
from streams.delivery import Delivery, DeliveryPolicy
from streams.kafka_io import ensure_topics, topic_reader, worker_producer
from streams.settings import Settings

pytestmark = pytest.mark.integration

SOURCE = TopicPartition("payees.raw", 0)


async def read_partitions(settings: Settings, topic: str, expected: int, timeout_s: float = 30) -> dict[bytes, set[int]]:
    """key → partitions it was read from, once ``expected`` records arrived (and a short settle)."""
    placed: dict[bytes, set[int]] = {}
    count = 0
    deadline = time.monotonic() + timeout_s
    async with topic_reader(settings, topic) as consumer:
        while time.monotonic() < deadline and count < expected:
            for tp, records in (await consumer.getmany(timeout_ms=500, max_records=5000)).items():
                for record in records:
                    placed.setdefault(record.key, set()).add(tp.partition)
                    count += 1
        for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
            count += len(records)
    assert count == expected, (topic, count, expected)
    return placed


def policy() -> DeliveryPolicy:
    return DeliveryPolicy(max_message_bytes=100_000, retry_initial_s=0.05, retry_max_s=0.2, stall_after_s=1.0)


async def test_a_key_lands_on_the_partition_plain_send_gives_it(settings: Settings):
    await ensure_topics(settings)
    keys = [f"ap:{i}".encode() for i in range(200)]
    producer = worker_producer(settings)
    await producer.start()
    try:
        delivery = Delivery(producer, {"enriched": settings.topic_enriched}, policy())
        delivery.submit_batch(
            SOURCE, [(i, Outcome(outputs=(OutputRecord("enriched", key, b"batched", ()),))) for i, key in enumerate(keys)]
        )
        assert await delivery.drain([SOURCE], timeout_s=30)
        assert delivery.committable() == {SOURCE: len(keys)} and not delivery.stalled
        await asyncio.gather(*[await producer.send(settings.topic_audit, b"plain", key=key) for key in keys])
    finally:
        await producer.stop()
    batched = await read_partitions(settings, settings.topic_enriched, len(keys))
    plain = await read_partitions(settings, settings.topic_audit, len(keys))
    assert batched == plain
    # Apache Kafka's default partitioner: positive murmur2 of the key modulo the partition count.
    assert batched == {key: {(murmur2(key) & 0x7FFFFFFF) % settings.partitions} for key in keys}
    assert len({partition for partitions in batched.values() for partition in partitions}) == settings.partitions


async def test_a_refused_batch_is_sent_again_whole_and_nothing_acknowledged_is_repeated(settings: Settings):
    """The review copies go to a topic the broker refuses (a 300-character name: Kafka and Tansu
    allow 249), the results to a good one, in one submitted batch: the partition stalls, never
    committable past the first record; once the name is fixed (the test points the role at a good
    topic, as an operator fixing the setting would), every review copy arrives exactly once, and
    the results, acknowledged at the first attempt, were not sent again by the retries."""
    await ensure_topics(settings)
    records = 30
    refused = "r" * 300
    producer = worker_producer(settings.model_copy(update={"delivery_stall_after_s": 5.0}))
    await producer.start()
    try:
        delivery = Delivery(producer, {"enriched": settings.topic_enriched, "review": refused}, policy())
        outcomes = [
            (i, Outcome(outputs=(
                OutputRecord("enriched", f"ap:{i}".encode(), b"result", ()),
                OutputRecord("review", f"ap:{i}".encode(), b"review copy", ()),
            )))
            for i in range(records)
        ]
        delivery.submit_batch(SOURCE, outcomes)
        deadline = time.monotonic() + 30
        while SOURCE not in delivery.stalled and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert SOURCE in delivery.stalled, "the refused batch should stall its partition"
        await asyncio.sleep(1.0)  # more retries while stalled
        assert delivery.committable() == {}
        delivery._topics["review"] = settings.topic_review  # noqa: SLF001 - the cause removed
        assert await delivery.drain([SOURCE], timeout_s=30)
        assert delivery.committable() == {SOURCE: records} and not delivery.stalled
    finally:
        await producer.stop()
    reviews = await read_partitions(settings, settings.topic_review, records)
    results = await read_partitions(settings, settings.topic_enriched, records)
    assert set(reviews) == set(results) == {f"ap:{i}".encode() for i in range(records)}
