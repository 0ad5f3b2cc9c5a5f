"""Replay's range accounting against a consumer whose log the test controls.

Tansu cannot delete records (no DeleteRecords, no retention by size or time that we can trigger
in a test), so a start removed by retention is simulated here: the fake consumer's log begins
after offset 0, as a Kafka partition does once retention has deleted its head."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from streams.kafka_io import OutgoingRecord
from streams.replay import Bound, ReplaySummary, replay_partitions, replay_record

TP = TopicPartition("payees.raw", 0)


@dataclass
class Record:
    offset: int
    timestamp: int
    key: bytes
    value: bytes
    headers: tuple = ()


@dataclass
class FakeConsumer:
    """A partition log from ``first`` to ``end``; ``holes`` are offsets deleted meanwhile."""

    first: int
    end: int
    holes: set[int] = field(default_factory=set)
    position: int = 0

    def records(self) -> list[Record]:
        return [
            Record(offset, 1_000 + offset, f"ap:{offset}".encode(), json.dumps({"source_system": "ap", "source_record_id": str(offset), "payee_name": "ACME"}).encode())
            for offset in range(self.first, self.end)
            if offset not in self.holes
        ]

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.position = max(offset, self.first)  # auto_offset_reset=earliest

    async def getmany(self, tp: TopicPartition, timeout_ms: int, max_records: int) -> dict:
        batch = [r for r in self.records() if r.offset >= self.position][:max_records]
        if batch:
            self.position = batch[-1].offset + 1
        return {tp: batch} if batch else {}

    def highwater(self, tp: TopicPartition) -> int:
        return self.end

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict:
        return {tp: self.first for tp in partitions}


async def run(consumer: FakeConsumer, start: Bound | None, stop: Bound | None) -> tuple[ReplaySummary, list[OutgoingRecord]]:
    summary = ReplaySummary(run_id="run")
    sent: list[OutgoingRecord] = []

    async def send(records: list[OutgoingRecord]) -> int:
        sent.extend(records)
        return len(records)

    def select(record):  # type: ignore[no-untyped-def]
        return replay_record(record, "run", start, stop, None, False)

    await replay_partitions(consumer, [TP], start, stop, False, select, send, summary)  # type: ignore[arg-type]
    return summary, sent


async def test_a_whole_range_is_complete():
    summary, sent = await run(FakeConsumer(first=0, end=10), Bound(offset=2), Bound(offset=8))
    report = summary.partitions[0]
    assert summary.complete and (report.first_read, report.read_up_to, report.sent, report.missing) == (2, 8, 6, 0)
    assert [record.key for record in sent] == [f"ap:{i}".encode() for i in range(2, 8)]


async def test_a_deleted_start_is_read_from_the_earliest_offset_and_reported():
    summary, sent = await run(FakeConsumer(first=5, end=10), Bound(offset=0), None)
    report = summary.partitions[0]
    assert not summary.complete
    assert (report.requested, report.available_from, report.first_read, report.missing, report.sent) == ((0, 10), 5, 5, 5, 5)
    assert summary.as_dict()["missing"] == 5 and summary.as_dict()["complete"] is False


async def test_a_range_entirely_deleted_sends_nothing_and_says_so():
    summary, sent = await run(FakeConsumer(first=20, end=30), Bound(offset=0), Bound(offset=10))
    assert sent == [] and summary.partitions[0].missing == 10 and not summary.complete


async def test_holes_inside_the_range_are_counted():
    summary, sent = await run(FakeConsumer(first=0, end=10, holes={3, 4}), None, None)
    assert summary.partitions[0].missing == 2 and summary.sent == 8 and not summary.complete


async def test_records_appended_after_the_start_are_not_read():
    consumer = FakeConsumer(first=0, end=5)
    summary = ReplaySummary(run_id="run")
    sent: list[OutgoingRecord] = []

    async def send(records: list[OutgoingRecord]) -> int:
        consumer.end += len(records)  # the replay copies land on the same topic
        sent.extend(records)
        return len(records)

    await replay_partitions(consumer, [TP], None, None, False, lambda r: replay_record(r, "run", None, None, None, False), send, summary)  # type: ignore[arg-type]
    assert len(sent) == 5 and summary.complete
