"""The one Kafka client configuration: how every client finds and authenticates to the brokers.

Every aiokafka client of the project (the worker's consumer and producer, the CLI's producers and
readers, the topic admin, the supplier-index and decisions readers, the broker health check, the
sink's consumer, replay) is created with ``**kafka_client_options(settings)``. The Faust app opens
no Kafka connection (streams/app.py). tests/unit/test_kafka_security.py enumerates the clients.
"""

from __future__ import annotations

import ssl
from typing import Any

from streams.settings import Settings


def bootstrap_servers(settings: Settings) -> str:
    return settings.broker_url.partition("://")[2] or settings.broker_url


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the brokers: verifies them against the CA file (or the system's CAs)
    and presents the client certificate when one is configured. None without TLS."""
    if not settings.kafka_uses_tls:
        return None
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    context.check_hostname = settings.kafka_ssl_check_hostname
    if settings.kafka_ssl_certfile and settings.kafka_ssl_keyfile:
        password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile),
            password=password.get_secret_value() if password else None,
        )
    return context


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin, bare client)."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "security_protocol": settings.kafka_security_protocol,
    }
    context = kafka_ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # checked by the settings
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password.get_secret_value(),
        )
    return options
