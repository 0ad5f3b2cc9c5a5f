"""Integration fixtures: a real Tansu broker, workers as subprocesses, helpers to read topics."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from streams.postgres import quote_ident
from streams.dev import WorkerProcess
from streams.embedded_broker import EmbeddedTansu, free_port
from streams.kafka_io import OutgoingRecord, ensure_topics, kafka_producer, publish, topic_reader
from streams.settings import Settings
from streams.supplier_loading import load_supplier_file

TEST_DSN = "postgresql://postgres@127.0.0.1:5432/test"
FIXTURE_SUPPLIERS = Path(__file__).resolve().parent / "fixtures" / "suppliers_sample.csv"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedTansu]:
    log_dir = tmp_path_factory.mktemp("broker")
    with EmbeddedTansu(log_path=log_dir / "broker.log") as running:
        yield running


@pytest.fixture
def settings(broker: EmbeddedTansu, tmp_path: Path) -> Settings:
    """Settings with topic names of their own, so tests never see each other's records."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    return Settings(
        broker_url=broker.url,
        broker_flavor="tansu",
        app_id=f"payee-stream-{prefix}",
        partitions=4,
        data_dir=tmp_path / "worker",
        web_port=free_port(),
        topic_raw=f"{prefix}.payees.raw",
        topic_enriched=f"{prefix}.payees.enriched",
        topic_review=f"{prefix}.payees.review",
        topic_audit=f"{prefix}.payees.audit",
        topic_dlq=f"{prefix}.payees.dlq",
        topic_llm=f"{prefix}.payees.llm",
        topic_merchant=f"{prefix}.payees.merchant",
        topic_suppliers=f"{prefix}.suppliers",
        topic_decisions=f"{prefix}.payees.decisions",
        log_level="WARNING",
    )


@pytest.fixture
def loaded_settings(settings: Settings) -> Settings:
    asyncio.run(ensure_topics(settings))
    asyncio.run(load_supplier_file(settings, FIXTURE_SUPPLIERS, None))
    return settings


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    started: list[WorkerProcess] = []

    def start(settings: Settings, name: str = "worker") -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"{name}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def publish_values(settings: Settings, keyed_values: list[tuple[bytes, bytes]]) -> int:
    async def run() -> int:
        async with kafka_producer(settings) as producer:
            records = [OutgoingRecord(key=key, value=value) for key, value in keyed_values]
            return await publish(producer, settings.topic_raw, records)

    return asyncio.run(run())


def read_topic(settings: Settings, topic: str, expected: int, timeout_s: float, settle_s: float = 2.0) -> list[dict]:
    """Every record on ``topic`` once ``expected`` have arrived (plus a settle time to catch extras)."""

    async def run() -> list[dict]:
        values: list[dict] = []
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        async with topic_reader(settings, topic) as consumer:
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                    values.extend(json.loads(record.value) for record in records)
                if len(values) >= expected:
                    settle_until = settle_until or time.monotonic() + settle_s
                    if time.monotonic() >= settle_until:
                        break
        return values

    return asyncio.run(run())


@pytest.fixture
async def pg_schema() -> AsyncIterator[str]:
    """A fresh schema name in the test database; the schema is dropped afterwards."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    conn = await asyncpg.connect(TEST_DSN)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
    finally:
        await conn.close()
