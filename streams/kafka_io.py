"""Plain aiokafka helpers for the command line: create topics, publish files, read topics."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tqdm import tqdm

from domain.payee_files import ORIGINAL_LINE, iter_payloads, open_payee_rows
from streams.kafka_security import kafka_client_options
from streams.settings import Settings

log = structlog.get_logger(__name__)


def pipeline_topics(settings: Settings) -> list[str]:
    return [
        settings.topic_raw,
        settings.topic_enriched,
        settings.topic_review,
        settings.topic_audit,
        settings.topic_dlq,
        settings.topic_llm,
        settings.topic_merchant,
    ]


async def ensure_topics(settings: Settings) -> None:
    """Create the pipeline topics and the compacted suppliers and decisions topics if missing."""
    admin = AIOKafkaAdminClient(**kafka_client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.partitions, settings.replication_factor)
            for name in pipeline_topics(settings)
        ]
        wanted += [
            NewTopic(
                compacted,
                settings.partitions,
                settings.replication_factor,
                topic_configs={"cleanup.policy": "compact"},
            )
            for compacted in (settings.topic_suppliers, settings.topic_decisions)
        ]
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:  # another process created them meanwhile
                pass
    finally:
        await admin.close()


def group_consumer_options(settings: Settings) -> dict[str, int]:
    """Session, heartbeat and fetch timings of a group consumer (short ones on Tansu, see
    ``streams/tansu_compat.py``)."""
    from streams import tansu_compat

    if settings.on_tansu:
        return {
            "session_timeout_ms": int(tansu_compat.TANSU_SESSION_TIMEOUT_S * 1000),
            "heartbeat_interval_ms": int(tansu_compat.TANSU_HEARTBEAT_INTERVAL_S * 1000),
            "fetch_max_wait_ms": tansu_compat.TANSU_FETCH_MAX_WAIT_MS,
        }
    return {
        "session_timeout_ms": int(settings.session_timeout_s * 1000),
        "heartbeat_interval_ms": int(settings.heartbeat_interval_s * 1000),
    }


def worker_producer(settings: Settings) -> AIOKafkaProducer:
    """The worker's producer: every output waits for all in-sync replicas; idempotent on Kafka
    (a retried send is not written twice; Tansu rejects idempotent produce requests)."""
    return AIOKafkaProducer(
        **kafka_client_options(settings),
        acks="all",
        enable_idempotence=not settings.on_tansu,
        # The delivery layer closes each batch before sending it: no lingering. A batch fits
        # in what the broker takes (one output larger than that is refused before sending).
        max_batch_size=min(256 * 1024, settings.max_message_bytes),
        max_request_size=settings.max_message_bytes + 64 * 1024,
        # A send not acknowledged by then (metadata included: a missing topic) fails and is
        # retried by the delivery layer; the same bound stalls the partition.
        request_timeout_ms=int(settings.delivery_stall_after_s * 1000),
    )


@asynccontextmanager
async def kafka_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        **kafka_client_options(settings),
        acks="all",
        enable_idempotence=not settings.on_tansu,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@dataclass(frozen=True)
class OutgoingRecord:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    records: Iterable[OutgoingRecord],
    on_sent: callable | None = None,  # type: ignore[valid-type]
    window: int = 5000,
) -> int:
    """Publish with a bounded number of unacknowledged sends; returns how many were acked."""
    pending: set[asyncio.Future[object]] = set()
    sent = 0

    async def drain(limit: int) -> None:
        nonlocal sent
        while len(pending) > limit:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                pending.discard(future)
                future.result()  # raise delivery errors rather than lose them silently
                sent += 1
                if on_sent:
                    on_sent()

    for record in records:
        future = await producer.send(topic, key=record.key, value=record.value, headers=record.headers)
        pending.add(future)
        await drain(window)
    await drain(0)
    return sent


async def publish_payee_file(
    settings: Settings,
    path: Path,
    topic: str,
    column_overrides: Sequence[str] = (),
    sheet: str | None = None,
    source_system: str | None = None,
    announce: Callable[[str], None] = lambda _: None,
    progress: Callable[[int | None, str], tqdm] | None = None,
) -> int:
    """Publish a payee file (CSV, XLSX, JSON lines; columns detected), keyed by
    ``source_system:source_record_id``, reading and sending one row at a time.

    Rows are published as read, not validated here: the worker dead-letters a bad one with its
    reason, so nothing in the file is dropped silently."""
    rows = open_payee_rows(path, column_overrides, sheet)
    announce(rows.describe())
    system = source_system or _source_system_from(path)

    def records() -> Iterator[OutgoingRecord]:
        for number, (row, payload) in enumerate(iter_payloads(rows, system), start=1):
            if isinstance(payload, str):  # an unreadable JSON line goes as it was, to be dead-lettered
                yield OutgoingRecord(key=f"{system}:row-{number}".encode(), value=str(row[ORIGINAL_LINE]).encode())
                continue
            key = f"{payload['source_system']}:{payload['source_record_id']}".encode()
            yield OutgoingRecord(key=key, value=json.dumps(payload).encode())

    await ensure_topics(settings)
    async with kafka_producer(settings) as producer:
        bar_factory = progress or (lambda total, desc: tqdm(total=total, desc=desc, unit="rec", file=sys.stderr))
        with bar_factory(rows.table.estimated_rows, f"→ {topic}") as bar:
            return await publish(producer, topic, records(), on_sent=bar.update)


def _source_system_from(path: Path) -> str:
    """``ap-east-2026-11.csv`` → ``ap-east-2026-11``: records keep a stable key across runs."""
    return path.name.split(".")[0] or "file"


async def wait_for_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, waiting until the topic exists."""
    while True:
        await consumer._client.force_metadata_update()  # aiokafka has no public refresh
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, p) for p in sorted(numbers)]
        log.info("waiting_for_topic", topic=topic)
        await asyncio.sleep(0.5)


async def caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    """True once every partition's position has reached the high-water mark of its last fetch."""
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


@asynccontextmanager
async def topic_reader(
    settings: Settings, topic: str, from_beginning: bool = True
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer without a group, assigned every partition of ``topic``."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        fetch_max_wait_ms=100 if settings.on_tansu else 500,
    )
    await consumer.start()
    try:
        tps = await wait_for_partitions(consumer, topic)
        consumer.assign(tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            await consumer.seek_to_end(*tps)
        yield consumer
    finally:
        await consumer.stop()
