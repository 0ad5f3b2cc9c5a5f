"""Workarounds for the embedded Tansu broker, switched on only by ``broker_flavor="tansu"``.

Measured differences from Apache Kafka that matter here:

* a waiting Fetch is not answered early when data arrives, so latency is the fetch max wait:
  Faust hard-codes 1.5 s, we use a short wait on this broker only;
* a group join completes only after about half the session timeout: short session timeout;
* ListOffsets reports a too-low end offset: nothing in the worker relies on it (the supplier
  index reads the high-water mark from Fetch responses, which is right on both brokers), and
  replay finds time ranges from record timestamps (see ``streams/replay.py``).

Production runs on Apache Kafka with none of this installed.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport import drivers
from faust.transport.drivers import aiokafka as faust_aiokafka

TANSU_SCHEME = "tansu"
TANSU_FETCH_MAX_WAIT_MS = 50
TANSU_SESSION_TIMEOUT_S = 6.0
TANSU_HEARTBEAT_INTERVAL_S = 1.0


class TansuConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed fetch_max_wait_ms=1500; the consumer reads it when it starts.
        consumer._fetch_max_wait_ms = TANSU_FETCH_MAX_WAIT_MS
        return consumer


class TansuConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> TansuConsumerThread:
        return TansuConsumerThread(self, loop=self.loop, beacon=self.beacon)


class TansuTransport(faust_aiokafka.Transport):
    Consumer = TansuConsumer


def install() -> None:
    """Register the ``tansu://`` broker scheme with Faust (idempotent)."""
    drivers.TRANSPORTS.aliases[TANSU_SCHEME] = f"{__name__}:TansuTransport"


def faust_overrides() -> dict[str, float]:
    return {
        "broker_session_timeout": TANSU_SESSION_TIMEOUT_S,
        "broker_heartbeat_interval": TANSU_HEARTBEAT_INTERVAL_S,
    }
