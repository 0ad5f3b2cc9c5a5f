"""Plain aiokafka helpers for the command line: create topics, publish files, read topics."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from tqdm import tqdm

from streams.settings import Settings

log = structlog.get_logger(__name__)


def bootstrap_servers(settings: Settings) -> str:
    return settings.broker_url.partition("://")[2] or settings.broker_url


def pipeline_topics(settings: Settings) -> list[str]:
    return [
        settings.topic_raw,
        settings.topic_enriched,
        settings.topic_review,
        settings.topic_audit,
        settings.topic_dlq,
        settings.topic_llm,
    ]


async def ensure_topics(settings: Settings) -> None:
    """Create the pipeline topics and the compacted suppliers topic if they do not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.partitions, settings.replication_factor)
            for name in pipeline_topics(settings)
        ]
        wanted.append(
            NewTopic(
                settings.topic_suppliers,
                settings.partitions,
                settings.replication_factor,
                topic_configs={"cleanup.policy": "compact"},
            )
        )
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
        bootstrap_servers=bootstrap_servers(settings),
        acks="all",
        enable_idempotence=not settings.on_tansu,
        linger_ms=settings.producer_linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=settings.max_message_bytes + 64 * 1024,
        # A send not acknowledged by then (metadata included: a missing topic) fails and is
        # retried by the delivery layer; the same bound stalls the partition.
        request_timeout_ms=int(settings.delivery_stall_after_s * 1000),
    )


@asynccontextmanager
async def kafka_producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers(settings),
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


async def publish_payee_file(settings: Settings, path: Path, topic: str) -> int:
    """Publish a payee file, keyed by ``source_system:source_record_id``, with a progress bar."""
    rows = list(jsonl_or_csv_records(path))
    records = [
        OutgoingRecord(
            key=f"{row.get('source_system', '')}:{row.get('source_record_id', '')}".encode(),
            value=json.dumps(row).encode(),
        )
        for row in rows
    ]
    await ensure_topics(settings)
    async with kafka_producer(settings) as producer:
        with tqdm(total=len(records), desc=f"→ {topic}", unit="rec", file=sys.stderr) as bar:
            return await publish(producer, topic, records, on_sent=bar.update)


def jsonl_or_csv_records(path: Path) -> Iterator[dict[str, object]]:
    """Rows of a payee file: JSON lines, or CSV with PayeeRecord column names."""
    with open(path, newline="", encoding="utf-8") as handle:
        if path.suffix in (".jsonl", ".ndjson"):
            for line in handle:
                if line.strip():
                    yield json.loads(line)
        else:
            for row in csv.DictReader(handle):
                yield {key: value for key, value in row.items() if value not in (None, "")}


async def wait_for_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The topic's partitions, waiting until the topic exists."""
    while True:
        await consumer._client.force_metadata_update()  # aiokafka has no public refresh
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, p) for p in sorted(numbers)]
        log.info("waiting_for_topic", topic=topic)
        await asyncio.sleep(0.5)


@asynccontextmanager
async def topic_reader(
    settings: Settings, topic: str, from_beginning: bool = True
) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer without a group, assigned every partition of ``topic``."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
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
