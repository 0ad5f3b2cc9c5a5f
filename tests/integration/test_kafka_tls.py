"""Kafka over TLS (with a client certificate), through the project's one client configuration.

The embedded Tansu offers no TLS listener (its ``--cert``/``--key`` options leave the listener
plain), so TLS is terminated by a proxy in the test (tests/tls_proxy.py) and Tansu advertises
the proxy's port: after bootstrapping, every connection any client makes is a TLS connection.
A worker started with these settings can only work if every one of its Kafka clients (Faust's
consumer and producer, the supplier-index reader, the broker health check) speaks TLS.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.embedded_broker import EmbeddedTansu, free_port
from streams.kafka_io import OutgoingRecord, ensure_topics, kafka_producer, publish, topic_reader
from streams.settings import Settings
from streams.supplier_loading import load_supplier_file
from tests.conftest import FIXTURE_SUPPLIERS, publish_values, read_topic
from tests.tls import Pki, make_ca, make_pki
from tests.tls_proxy import TlsProxy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("kafka-pki"))


@pytest.fixture(scope="module")
def tls_proxy(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsProxy]:
    proxy_port = free_port()
    log_path = tmp_path_factory.mktemp("tls-broker") / "broker.log"
    with EmbeddedTansu(log_path=log_path, advertised_port=proxy_port) as broker:
        proxy = TlsProxy(proxy_port, broker.port, pki).start()
        yield proxy
        proxy.stop()


def tls_settings(proxy: TlsProxy, pki: Pki, tmp_path: Path, **overrides: object) -> Settings:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    values: dict[str, object] = {
        "broker_url": f"kafka://127.0.0.1:{proxy.listen_port}",
        "broker_flavor": "tansu",
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": pki.ca_cert,
        "kafka_ssl_certfile": pki.client_cert,
        "kafka_ssl_keyfile": pki.client_key,
        "app_id": f"payee-stream-{prefix}",
        "partitions": 2,
        "data_dir": tmp_path / "worker",
        "web_port": free_port(),
        "log_level": "WARNING",
        **{f"topic_{name}": f"{prefix}.{name}" for name in ("raw", "enriched", "review", "audit", "dlq", "llm", "suppliers")},
    }
    values.update(overrides)
    return Settings(**values)


async def produce_and_read(settings: Settings, topic: str, count: int) -> list[bytes]:
    await ensure_topics(settings)  # the admin client
    async with kafka_producer(settings) as producer:
        records = [OutgoingRecord(key=str(i).encode(), value=f"over tls {i}".encode()) for i in range(count)]
        assert await publish(producer, topic, records) == count
    values: list[bytes] = []
    async with topic_reader(settings, topic) as consumer:
        deadline = time.monotonic() + 20
        while len(values) < count and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                values.extend(record.value for record in batch)
    return values


def test_produce_and_consume_over_tls(tls_proxy: TlsProxy, pki: Pki, tmp_path: Path) -> None:
    settings = tls_settings(tls_proxy, pki, tmp_path)
    before = tls_proxy.handshakes
    values = asyncio.run(produce_and_read(settings, settings.topic_raw, 10))
    assert sorted(values) == sorted(f"over tls {i}".encode() for i in range(10))
    assert tls_proxy.handshakes > before


def test_confluent_kafka_reads_and_writes_the_same_topic_over_tls(
    tls_proxy: TlsProxy, pki: Pki, tmp_path: Path
) -> None:
    """An independent client (librdkafka) with the same CA and client certificate."""
    confluent_kafka = pytest.importorskip("confluent_kafka")
    settings = tls_settings(tls_proxy, pki, tmp_path)
    asyncio.run(produce_and_read(settings, settings.topic_enriched, 3))
    security = {
        "bootstrap.servers": f"127.0.0.1:{tls_proxy.listen_port}",
        "security.protocol": "SSL",
        "ssl.ca.location": str(pki.ca_cert),
        "ssl.certificate.location": str(pki.client_cert),
        "ssl.key.location": str(pki.client_key),
    }
    producer = confluent_kafka.Producer(security)
    producer.produce(settings.topic_enriched, key=b"c", value=b"from librdkafka")
    assert producer.flush(20) == 0
    consumer = confluent_kafka.Consumer(
        {**security, "group.id": f"{settings.app_id}-rdkafka", "auto.offset.reset": "earliest"}
    )
    partitions = consumer.list_topics(settings.topic_enriched, timeout=20).topics[settings.topic_enriched].partitions
    consumer.assign([confluent_kafka.TopicPartition(settings.topic_enriched, p, 0) for p in partitions])
    seen: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(seen) < 4 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.append(message.value())
    consumer.close()
    assert sorted(seen) == sorted([b"from librdkafka", b"over tls 0", b"over tls 1", b"over tls 2"])


def test_a_broker_certificate_from_another_ca_is_refused(tls_proxy: TlsProxy, pki: Pki, tmp_path: Path) -> None:
    other_ca, _ = make_ca(tmp_path, "some other CA")
    settings = tls_settings(tls_proxy, pki, tmp_path, kafka_ssl_cafile=other_ca)

    async def connect() -> None:
        async with kafka_producer(settings):
            pass

    with pytest.raises(KafkaConnectionError):
        asyncio.run(connect())


def test_the_worker_runs_end_to_end_over_tls(tls_proxy: TlsProxy, pki: Pki, tmp_path: Path, start_worker) -> None:
    settings = tls_settings(tls_proxy, pki, tmp_path)
    asyncio.run(ensure_topics(settings))
    asyncio.run(load_supplier_file(settings, FIXTURE_SUPPLIERS, None))
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)  # index caught up and broker reachable: both over TLS
    record = {"source_system": "ap", "source_record_id": "1", "payee_name": "ACME WIDGETS INC"}
    publish_values(settings, [(b"ap:1", json.dumps(record).encode())])
    results = read_topic(settings, settings.topic_enriched, expected=1, timeout_s=60, settle_s=0.5)
    assert [result["record_key"] for result in results] == ["ap:1"]
