"""Faust's transport for Apache Kafka, with an idempotent producer.

Faust turns producer idempotence on only inside transactions (exactly-once processing). It
matters under at-least-once too: when an acknowledgement is lost and the producer retries, the
broker would write the record twice; an idempotent producer's retries carry sequence numbers
the broker de-duplicates. Downstream duplicates are then left to crashes alone (and carry the
same event id). Not used on the embedded broker, which rejects idempotent produce requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

KAFKA_SCHEME = "kafka-idempotent"


class IdempotentProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}


class KafkaTransport(faust_aiokafka.Transport):
    Producer = IdempotentProducer


def install() -> None:
    """Register the ``kafka-idempotent://`` broker scheme with Faust (idempotent)."""
    drivers.TRANSPORTS.aliases[KAFKA_SCHEME] = f"{__name__}:KafkaTransport"


def with_scheme(kafka_url: str, scheme: str) -> str:
    """``kafka://host:port`` → ``<scheme>://host:port``: the scheme picks Faust's transport."""
    _, _, rest = kafka_url.partition("://")
    return f"{scheme}://{rest or kafka_url}"
