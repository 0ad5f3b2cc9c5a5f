"""Replay: send a range of ``payees.raw`` (or of the dead-letter topic) through the pipeline again.

Records are re-published to ``payees.raw`` with the header ``x-replay-run-id``; results carry
that run id and the versions in force now, and since event ids are deterministic per version,
consumers upsert. Records that are themselves replays are skipped, so replaying a time range
twice never snowballs.

Ranges are ``[from, to)``: offsets, or timestamps (ISO 8601 or epoch milliseconds). Apache Kafka
answers timestamp lookups with ``offsets_for_times``; the embedded Tansu broker answers 0, so
there offsets are found by binary search over record timestamps (CreateTime, non-decreasing
per partition for a well-behaved producer), and every record is still checked against the range.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.kafka_io import OutgoingRecord, kafka_producer, publish, wait_for_partitions
from streams.kafka_security import kafka_client_options
from streams.settings import Settings

REPLAY_RUN_HEADER = "x-replay-run-id"


@dataclass(frozen=True)
class Bound:
    """One end of a range: an offset or a timestamp in epoch milliseconds."""

    offset: int | None = None
    timestamp_ms: int | None = None

    @classmethod
    def parse(cls, text: str) -> Bound:
        if text.isdigit() and len(text) < 12:  # offsets are small; epoch ms have 13 digits
            return cls(offset=int(text))
        if text.isdigit():
            return cls(timestamp_ms=int(text))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return cls(timestamp_ms=int(moment.timestamp() * 1000))


@dataclass(frozen=True)
class ReplayFilter:
    """``field=value`` on the payee record, e.g. ``source_system=ap-east``."""

    field_name: str
    value: str

    @classmethod
    def parse(cls, text: str) -> ReplayFilter:
        name, _, value = text.partition("=")
        aliases = {"source": "source_system"}
        return cls(aliases.get(name.strip(), name.strip()), value.strip())

    def accepts(self, payload: dict[str, object]) -> bool:
        return str(payload.get(self.field_name)) == self.value


@dataclass
class ReplaySummary:
    run_id: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    per_partition: dict[int, tuple[int, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "ranges": {str(p): list(r) for p, r in self.per_partition.items()},
        }


async def fetch_one(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> ConsumerRecord | None:
    consumer.seek(tp, offset)
    batch = await consumer.getmany(tp, timeout_ms=2000, max_records=1)
    records = batch.get(tp, [])
    return records[0] if records else None


async def high_water(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """End offset from a Fetch response (ListOffsets is wrong on Tansu, right on Kafka)."""
    await fetch_one(consumer, tp, 0)
    return consumer.highwater(tp) or 0


async def offset_for_time_by_search(
    consumer: AIOKafkaConsumer, tp: TopicPartition, timestamp_ms: int, end: int
) -> int:
    """First offset whose record timestamp is >= ``timestamp_ms`` (binary search)."""
    low, high = 0, end
    while low < high:
        middle = (low + high) // 2
        record = await fetch_one(consumer, tp, middle)
        if record is None:  # compacted or deleted gap: look right
            low = middle + 1
        elif record.timestamp < timestamp_ms:
            low = record.offset + 1
        else:
            high = middle
    return low


async def resolve_bound(
    consumer: AIOKafkaConsumer, tp: TopicPartition, bound: Bound | None, end: int, default: int, search_by_time: bool
) -> int:
    if bound is None:
        return default
    if bound.offset is not None:
        return min(bound.offset, end)
    assert bound.timestamp_ms is not None
    if search_by_time:
        return await offset_for_time_by_search(consumer, tp, bound.timestamp_ms, end)
    found = await consumer.offsets_for_times({tp: bound.timestamp_ms})
    return found[tp].offset if found.get(tp) else end


def replay_payload(record: ConsumerRecord, from_dead_letters: bool) -> bytes | None:
    """The original raw bytes: as they are, or out of a dead-letter envelope."""
    if not from_dead_letters:
        return record.value
    envelope = json.loads(record.value)
    return base64.b64decode(envelope["original_value_b64"])


def within_time(record: ConsumerRecord, start: Bound | None, stop: Bound | None) -> bool:
    if start and start.timestamp_ms is not None and record.timestamp < start.timestamp_ms:
        return False
    if stop and stop.timestamp_ms is not None and record.timestamp >= stop.timestamp_ms:
        return False
    return True


async def replay(
    settings: Settings,
    start: Bound | None,
    stop: Bound | None,
    partition: int | None = None,
    record_filter: ReplayFilter | None = None,
    from_dead_letters: bool = False,
    run_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    source_topic = settings.topic_dlq if from_dead_letters else settings.topic_raw
    summary = ReplaySummary(run_id=run_id or str(uuid.uuid4()))

    def select(record: ConsumerRecord) -> OutgoingRecord | None:
        return replay_record(record, summary.run_id, start, stop, record_filter, from_dead_letters)

    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        fetch_max_wait_ms=100 if settings.on_tansu else 500,
    )
    await consumer.start()
    try:
        partitions = await wait_for_partitions(consumer, source_topic)
        if partition is not None:
            partitions = [tp for tp in partitions if tp.partition == partition]
        consumer.assign(partitions)
        async with kafka_producer(settings) as producer:
            for tp in partitions:
                end = await high_water(consumer, tp)
                first = await resolve_bound(consumer, tp, start, end, 0, settings.on_tansu)
                last = await resolve_bound(consumer, tp, stop, end, end, settings.on_tansu)
                summary.per_partition[tp.partition] = (first, last)
                await replay_partition(
                    consumer, producer, tp, first, last, settings.topic_raw, summary, select, on_progress
                )
    finally:
        await consumer.stop()
    return summary


def replay_record(
    record: ConsumerRecord,
    run_id: str,
    start: Bound | None,
    stop: Bound | None,
    record_filter: ReplayFilter | None,
    from_dead_letters: bool,
) -> OutgoingRecord | None:
    """What to re-send for one source record, or None to skip it."""
    if REPLAY_RUN_HEADER in dict(record.headers or []) or not within_time(record, start, stop):
        return None
    payload = replay_payload(record, from_dead_letters)
    if record_filter is not None:
        try:
            accepted = record_filter.accepts(json.loads(payload or b"{}"))
        except ValueError:
            accepted = False  # cannot tell whether it matches: not ours to resend
        if not accepted:
            return None
    return OutgoingRecord(key=record.key, value=payload, headers=[(REPLAY_RUN_HEADER, run_id.encode())])


async def replay_partition(
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    tp: TopicPartition,
    first: int,
    last: int,
    target_topic: str,
    summary: ReplaySummary,
    select: Callable[[ConsumerRecord], OutgoingRecord | None],
    on_progress: Callable[[int], None] | None,
) -> None:
    consumer.seek(tp, first)
    position = first
    while position < last:
        records = (await consumer.getmany(tp, timeout_ms=1000, max_records=1000)).get(tp, [])
        if not records:
            break  # nothing more below the high-water mark
        outgoing = []
        for record in records:
            if record.offset >= last:
                break
            position = record.offset + 1
            try:
                chosen = select(record)
            except (ValueError, KeyError, TypeError):  # a dead letter envelope we cannot read
                summary.failed += 1
                continue
            if chosen is None:
                summary.skipped += 1
            else:
                outgoing.append(chosen)
        summary.sent += await publish(producer, target_topic, outgoing)
        if on_progress:
            on_progress(len(records))
