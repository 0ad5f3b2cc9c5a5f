"""Replay: send a range of ``payees.raw`` (or of the dead-letter topic) through the pipeline again.

Records are re-published to ``payees.raw`` with the header ``x-replay-run-id``; results carry
that run id and the versions in force now, and since event ids are deterministic per version,
consumers upsert. Records that are themselves replays are skipped, so replaying a time range
twice never snowballs.

Ranges are ``[from, to)``: offsets, or timestamps (ISO 8601 or epoch milliseconds). Apache Kafka
answers timestamp lookups with ``offsets_for_times``; the embedded Tansu broker answers 0, so
there offsets are found by binary search over record timestamps (CreateTime, non-decreasing
per partition for a well-behaved producer), and every record is still checked against the range.

What is read is fixed at start: every partition's end offset is taken before anything is sent
(replay copies land on ``payees.raw`` itself), and a start that retention already deleted
becomes the earliest offset still available. The summary reports, per partition, the range
asked for, the range read, what was sent, skipped and failed, and how many offsets of the range
were not there (deleted before or during the replay); ``complete`` is false, and the command
exits non-zero, when any were missing or failed. ``--dry-run`` reads and reports without sending.
Dead letters whose original was cut to fit the message size cannot be replayed: they count as
failed.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
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
class PartitionReport:
    requested: tuple[int, int]
    available_from: int
    first_read: int | None = None
    read_up_to: int | None = None
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    missing: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "requested": list(self.requested),
            "available_from": self.available_from,
            "read": [self.first_read, self.read_up_to] if self.first_read is not None else None,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "missing": self.missing,
        }


@dataclass
class ReplaySummary:
    run_id: str
    dry_run: bool = False
    partitions: dict[int, PartitionReport] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(report.sent for report in self.partitions.values())

    @property
    def skipped(self) -> int:
        return sum(report.skipped for report in self.partitions.values())

    @property
    def failed(self) -> int:
        return sum(report.failed for report in self.partitions.values())

    @property
    def missing(self) -> int:
        return sum(report.missing for report in self.partitions.values())

    @property
    def complete(self) -> bool:
        """Every offset asked for was read, and every record chosen was sent."""
        return self.missing == 0 and self.failed == 0

    @property
    def per_partition(self) -> dict[int, tuple[int, int]]:
        return {p: report.requested for p, report in self.partitions.items()}

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "complete": self.complete,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "missing": self.missing,
            "partitions": {str(p): report.as_dict() for p, report in self.partitions.items()},
        }


class TruncatedOriginal(ValueError):
    """A dead letter that kept only a prefix of its original: not replayable."""


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
    if envelope.get("original_truncated"):
        raise TruncatedOriginal("dead letter keeps only a prefix of its original")
    return base64.b64decode(envelope["original_value_b64"])


def within_time(record: ConsumerRecord, start: Bound | None, stop: Bound | None) -> bool:
    if start and start.timestamp_ms is not None and record.timestamp < start.timestamp_ms:
        return False
    if stop and stop.timestamp_ms is not None and record.timestamp >= stop.timestamp_ms:
        return False
    return True


Send = Callable[[list[OutgoingRecord]], Awaitable[int]]
# Fetches in a row that return nothing below the end offset before the rest counts as missing.
EMPTY_FETCHES_MEAN_GONE = 3


async def replay(
    settings: Settings,
    start: Bound | None,
    stop: Bound | None,
    partition: int | None = None,
    record_filter: ReplayFilter | None = None,
    from_dead_letters: bool = False,
    run_id: str | None = None,
    on_progress: Callable[[int], None] | None = None,
    dry_run: bool = False,
) -> ReplaySummary:
    source_topic = settings.topic_dlq if from_dead_letters else settings.topic_raw
    summary = ReplaySummary(run_id=run_id or str(uuid.uuid4()), dry_run=dry_run)

    def select(record: ConsumerRecord) -> OutgoingRecord | None:
        return replay_record(record, summary.run_id, start, stop, record_filter, from_dead_letters)

    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        # A seek below the earliest offset (deleted meanwhile) reads from the earliest one.
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100 if settings.on_tansu else 500,
    )
    await consumer.start()
    try:
        partitions = await wait_for_partitions(consumer, source_topic)
        if partition is not None:
            partitions = [tp for tp in partitions if tp.partition == partition]
        consumer.assign(partitions)
        if dry_run:

            async def count_only(records: list[OutgoingRecord]) -> int:
                return len(records)

            await replay_partitions(consumer, partitions, start, stop, settings.on_tansu, select, count_only, summary, on_progress)
        else:
            async with kafka_producer(settings) as producer:

                async def send(records: list[OutgoingRecord]) -> int:
                    return await publish(producer, settings.topic_raw, records)

                await replay_partitions(consumer, partitions, start, stop, settings.on_tansu, select, send, summary, on_progress)
    finally:
        await consumer.stop()
    return summary


async def replay_partitions(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    start: Bound | None,
    stop: Bound | None,
    search_by_time: bool,
    select: Callable[[ConsumerRecord], OutgoingRecord | None],
    send: Send,
    summary: ReplaySummary,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """Plan every partition first (end offsets as found now), then read and send each."""
    earliest = await consumer.beginning_offsets(partitions)
    plans = []
    for tp in partitions:
        end = await high_water(consumer, tp)
        first = await resolve_bound(consumer, tp, start, end, 0, search_by_time)
        last = await resolve_bound(consumer, tp, stop, end, end, search_by_time)
        report = PartitionReport(requested=(first, last), available_from=earliest.get(tp, 0) or 0)
        summary.partitions[tp.partition] = report
        plans.append((tp, report))
    for tp, report in plans:
        await replay_partition(consumer, tp, report, select, send, on_progress)


async def replay_partition(
    consumer: AIOKafkaConsumer,
    tp: TopicPartition,
    report: PartitionReport,
    select: Callable[[ConsumerRecord], OutgoingRecord | None],
    send: Send,
    on_progress: Callable[[int], None] | None,
) -> None:
    requested_first, last = report.requested
    first = max(requested_first, report.available_from)
    if first >= last:
        report.missing += max(0, last - requested_first)
        return
    report.missing += first - requested_first
    consumer.seek(tp, first)
    expected = first
    empty_fetches = 0
    while expected < last:
        records = (await consumer.getmany(tp, timeout_ms=1000, max_records=1000)).get(tp, [])
        if not records:
            empty_fetches += 1
            if empty_fetches == EMPTY_FETCHES_MEAN_GONE:
                break  # nothing more below the end offset: the rest is gone
            continue
        empty_fetches = 0
        outgoing = []
        for record in records:
            if record.offset >= last:
                expected = last
                break
            if report.first_read is None:
                report.first_read = record.offset
            report.missing += record.offset - expected  # a hole: deleted while we read
            expected = record.offset + 1
            try:
                chosen = select(record)
            except (ValueError, KeyError, TypeError):  # an envelope we cannot (or may not) resend
                report.failed += 1
                continue
            if chosen is None:
                report.skipped += 1
            else:
                outgoing.append(chosen)
        report.sent += await send(outgoing)
        if on_progress:
            on_progress(len(records))
    report.read_up_to = min(expected, last) if report.first_read is not None else None
    report.missing += max(0, last - expected)


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
