"""The PostgreSQL sink on the real (embedded Tansu) broker and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from pydantic import SecretStr
from aiokafka import AIOKafkaConsumer

from schemas.events import AuditEvent, EnrichedPayee
from streams import metrics
from streams.db import migrate
from streams.embedded_broker import free_port
from streams.kafka_io import (
    OutgoingRecord,
    ensure_topics,
    kafka_producer,
    publish,
    wait_for_partitions,
)
from streams.kafka_security import kafka_client_options
from streams.postgres import connect
from streams.postgres_sink import run_sink, sink_group_id
from streams.settings import Settings
from tests.conftest import TEST_DSN
from tests.unit.test_postgres_sink import make_audit, make_result

pytestmark = pytest.mark.integration


@pytest.fixture
async def sink_settings(settings: Settings, pg_schema: str) -> Settings:  # noqa: F811
    """Broker settings of the test, its own database schema (migrated), and short retries."""
    sink_settings = settings.model_copy(
        update={"postgres_dsn": SecretStr(TEST_DSN), "postgres_schema": pg_schema, "sink_retry_max_s": 1.0}
    )
    conn = await connect(sink_settings)
    try:
        await migrate(conn, pg_schema)
    finally:
        await conn.close()
    return sink_settings


def events_for(first: int, count: int) -> tuple[list[EnrichedPayee], list[AuditEvent]]:
    results = [make_result(i) for i in range(first, first + count)]
    audits = [make_audit(result, ("received", "matched", "emitted")) for result in results]
    return results, audits


async def publish_events(settings: Settings, results: list[EnrichedPayee], audits: list[AuditEvent]) -> int:
    def outgoing(events: list[EnrichedPayee] | list[AuditEvent]) -> list[OutgoingRecord]:
        return [OutgoingRecord(key=e.record_key.encode(), value=e.model_dump_json().encode()) for e in events]

    async with kafka_producer(settings) as producer:
        return await publish(producer, settings.topic_enriched, outgoing(results)) + await publish(
            producer, settings.topic_audit, outgoing(audits)
        )


@asynccontextmanager
async def running_sink(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    await ensure_topics(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(run_sink(settings, stop))
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=20)


async def committed_total(settings: Settings) -> int:
    """The sum of the sink group's committed offsets: on fresh topics, the records it finished."""
    consumer = AIOKafkaConsumer(
        **kafka_client_options(settings),
        group_id=sink_group_id(settings),
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        total = 0
        for topic in (settings.topic_audit, settings.topic_enriched):
            for tp in await wait_for_partitions(consumer, topic):
                total += await consumer.committed(tp) or 0
        return total
    finally:
        await consumer.stop()


async def wait_for_value(
    probe: Callable[[], Awaitable[int]], expected: int, timeout_s: float, what: str
) -> None:
    deadline = time.monotonic() + timeout_s
    while (value := await probe()) != expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {value}, not {expected}, after {timeout_s}s")
        await asyncio.sleep(0.25)


def sink_errors() -> float:
    return metrics.REGISTRY.get_sample_value("payee_stream_sink_errors_total") or 0.0


async def table_counts(settings: Settings) -> dict[str, int]:
    conn = await connect(settings)
    try:
        row = await conn.fetchrow(
            """SELECT (SELECT count(*) FROM audit_events) AS audit_rows,
                      (SELECT count(DISTINCT event_id) FROM audit_events) AS audit_ids,
                      (SELECT count(*) FROM payee_result_events) AS result_events,
                      (SELECT count(*) FROM payee_results) AS latest_results,
                      (SELECT count(*) FROM sink_rejected_records) AS rejected"""
        )
        return dict(row)
    finally:
        await conn.close()


async def test_redelivered_events_are_stored_exactly_once(sink_settings):
    settings = sink_settings
    results, audits = events_for(0, 100)
    await ensure_topics(settings)
    published = await publish_events(settings, results, audits)
    published += await publish_events(settings, results, audits)  # the same events again
    async with kafka_producer(settings) as producer:
        published += await publish(producer, settings.topic_audit, [OutgoingRecord(b"k", b"{garbage")])

    async with running_sink(settings):
        await wait_for_value(
            lambda: committed_total(settings), published, 40, "records committed by the sink"
        )

    assert await table_counts(settings) == {
        "audit_rows": 300,
        "audit_ids": 300,
        "result_events": 100,
        "latest_results": 100,
        "rejected": 1,
    }


async def audit_rows(settings: Settings) -> int:
    return (await table_counts(settings))["audit_rows"]


def scrape_metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_sink_command_serves_metrics_and_stops_cleanly_on_sigterm(sink_settings, tmp_path):
    settings = sink_settings.model_copy(update={"sink_metrics_port": free_port(), "log_level": "INFO"})
    await ensure_topics(settings)
    published = await publish_events(settings, *events_for(0, 20))
    command = (
        "from streams.db_cli import cmd_sink; from streams.settings import get_settings; "
        "cmd_sink(get_settings(), None)"
    )
    with (tmp_path / "sink.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", command], env={**os.environ, **settings.as_env()}, stdout=log, stderr=log
        )
    try:
        await wait_for_value(
            lambda: committed_total(settings), published, 40, "records committed by the sink"
        )
        written = await asyncio.to_thread(
            scrape_metric,
            settings.sink_metrics_port,
            'payee_stream_sink_rows_written_total{table="audit_events"}',
        )
        assert written == 60
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    finally:
        process.kill()
    assert '"sink_stopped"' in (tmp_path / "sink.log").read_text()
