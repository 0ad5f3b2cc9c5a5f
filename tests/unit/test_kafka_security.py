"""The one Kafka client configuration reaches every Kafka client of the project.

Two checks: every place in the code that creates an aiokafka client passes the configuration
(found by reading the source, so a new client cannot be added without it), and each client, when
created, carries the protocol, TLS context and SASL credentials of the settings.
tests/integration/test_kafka_tls.py runs the clients over TLS for real.
"""

from __future__ import annotations

import ast
import contextlib
import ssl
from pathlib import Path
from typing import Any

import pytest

from streams import app, broker_health, decisions_table, kafka_io, postgres_sink, replay, supplier_index
from streams.app import create_worker, faust_app, source_consumer
from streams.kafka_security import kafka_client_options
from streams.settings import Settings
from tests.tls import make_pki

REPO = Path(__file__).resolve().parents[2]
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient", "AIOKafkaClient"}
# Every module that creates an aiokafka client, and how many times.
EXPECTED_CLIENT_SITES = {
    "streams/app.py": 1,  # the worker's group consumer (the consumer loop's)
    "streams/kafka_io.py": 4,  # admin (ensure_topics), CLI producer, the worker's producer, topic reader
    "streams/replay.py": 1,
    "streams/postgres_sink.py": 1,
    "streams/supplier_index.py": 1,
    "streams/broker_health.py": 1,
    "streams/decisions_table.py": 1,
}


def client_constructions(path: Path) -> list[ast.Call]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name in CLIENT_CLASSES:
                calls.append(node)
    return calls


def passes_the_configuration(call: ast.Call) -> bool:
    """``**kafka_client_options(settings)``, or ``**self._kafka_options`` handed in from it."""
    for keyword in call.keywords:
        if keyword.arg is None:
            source = ast.unparse(keyword.value)
            if source.startswith("kafka_client_options(") or source == "self._kafka_options":
                return True
    return False


def test_every_kafka_client_in_the_code_is_created_with_the_one_configuration() -> None:
    found: dict[str, int] = {}
    for directory in ("streams", "agents", "domain", "schemas"):
        for path in sorted((REPO / directory).rglob("*.py")):
            calls = client_constructions(path)
            if not calls:
                continue
            relative = path.relative_to(REPO).as_posix()
            found[relative] = len(calls)
            for call in calls:
                assert passes_the_configuration(call), f"{relative}:{call.lineno} creates a Kafka client without it"
    assert found == EXPECTED_CLIENT_SITES


@pytest.fixture
def sasl_ssl_settings(tmp_path: Path) -> Settings:
    pki = make_pki(tmp_path / "pki")
    return Settings(
        broker_url="kafka://broker.example:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_cafile=pki.ca_cert,
        kafka_ssl_certfile=pki.client_cert,
        kafka_ssl_keyfile=pki.client_key,
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="payee-stream",
        kafka_sasl_password="s3cret-kafka",
        data_dir=tmp_path / "worker",
    )


def assert_carries(client_kwargs: dict[str, Any]) -> None:
    assert client_kwargs["bootstrap_servers"] == "broker.example:9093"
    assert client_kwargs["security_protocol"] == "SASL_SSL"
    assert isinstance(client_kwargs["ssl_context"], ssl.SSLContext)
    assert client_kwargs["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert client_kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert client_kwargs["sasl_plain_username"] == "payee-stream"
    assert client_kwargs["sasl_plain_password"] == "s3cret-kafka"


class Created(Exception):
    """Raised by a recording stand-in for an aiokafka class once it has its arguments."""


def recorder(created: list[dict[str, Any]]) -> type:
    class Recording:
        def __init__(self, *topics: str, **kwargs: Any) -> None:
            created.append(kwargs)
            raise Created

    return Recording


async def test_each_client_carries_the_configuration(sasl_ssl_settings, monkeypatch) -> None:
    settings = sasl_ssl_settings
    created: list[dict[str, Any]] = []
    for module in (app, kafka_io, replay, postgres_sink, supplier_index, broker_health, decisions_table):
        for name in CLIENT_CLASSES:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, recorder(created))

    async def reached(entry: Any) -> None:
        with pytest.raises(Created):
            if hasattr(entry, "__aenter__"):
                async with entry:
                    pass
            else:
                await entry

    await reached(kafka_io.ensure_topics(settings))  # the admin client
    await reached(kafka_io.kafka_producer(settings))  # CLI publishing, supplier load, sync, replay
    await reached(kafka_io.topic_reader(settings, "payees.enriched"))  # `payee-stream read`
    await reached(replay.replay(settings, None, None))
    for make_client in (postgres_sink.sink_consumer, source_consumer, kafka_io.worker_producer):
        with contextlib.suppress(Created):
            make_client(settings)
    ctx = create_worker(settings)
    await reached(ctx.index_service._consume(ctx.index_service))  # the supplier-index reader (a mode task)
    await reached(ctx.decisions._consume(ctx.decisions))  # the decisions reader
    await reached(ctx.broker_health._probe())  # the broker health check
    assert len(created) == 10
    for kwargs in created:
        assert_carries(kwargs)


def test_the_faust_app_opens_no_kafka_connection(sasl_ssl_settings) -> None:
    # So it needs no Kafka configuration: the consumer loop's clients above are the worker's only ones.
    faust = faust_app(sasl_ssl_settings, "security-test")
    started = {id(service) for service in faust.boot_strategy.server()}  # what the worker starts
    assert not started & {id(faust.producer), id(faust.consumer), id(faust.topics)}


def test_tls_without_sasl_and_plaintext(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    tls = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki.ca_cert)
    options = kafka_client_options(tls)
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["security_protocol"] == "SSL" and "sasl_mechanism" not in options
    plain = Settings()
    assert kafka_client_options(plain) == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize(
    "values",
    [
        {"kafka_security_protocol": "SASL_SSL"},  # no credentials
        {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u"},
        {"kafka_ssl_cafile": "/etc/ca.pem"},  # TLS files on a PLAINTEXT connection
        {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/etc/client.pem"},  # no key
    ],
)
def test_incomplete_security_settings_are_refused(values: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Settings(**values)
