"""Whether the worker can reach the broker, for ``/ready`` and for one clear log line per change.

Faust and aiokafka retry a lost broker forever, which is what we want: the worker stays up and
resumes on its own when the broker is back. But nothing in them reports the outage: ``/ready``
kept answering 200 and the log was only a flood of low-level aiokafka connection errors. This
service asks the cluster for its metadata every few seconds over a connection of its own and
turns the answer into a state that ``/ready`` reports and a log event when it changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError
from mode import Service

log = structlog.get_logger(__name__)


class BrokerHealth(Service):
    def __init__(
        self, *, kafka_options: Mapping[str, Any], interval_s: float, timeout_s: float, **kwargs: object
    ) -> None:
        super().__init__(**kwargs)
        self._kafka_options = kafka_options  # streams.kafka_security.kafka_client_options
        self._bootstrap_servers = kafka_options["bootstrap_servers"]
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        # Not reachable until a check has said so: a worker that never reached it is not ready.
        self.reachable = False
        self.error: str | None = None
        self._unreachable_since: float | None = None

    async def _probe(self) -> None:
        # A fresh client each time: a restarted broker (or a new cluster layout) is found through
        # the bootstrap servers, with no stale connections or node ids carried over.
        client = AIOKafkaClient(
            **self._kafka_options,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            await asyncio.wait_for(client.bootstrap(), self._timeout_s)
        finally:
            await client.close()

    @Service.task
    async def _check(self) -> None:
        while not self.should_stop:
            try:
                await self._probe()
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                self._mark_unreachable(exc)
            else:
                self._mark_reachable()
            await self.sleep(self._interval_s)

    def _mark_unreachable(self, exc: BaseException) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            log.error(
                "broker_unreachable",
                bootstrap_servers=self._bootstrap_servers,
                error=self.error,
                detail="consuming and publishing are paused and retried; the worker resumes when the broker is back",
            )
        self.reachable = False

    def _mark_reachable(self) -> None:
        if self._unreachable_since is not None:
            log.warning(
                "broker_reachable_again",
                bootstrap_servers=self._bootstrap_servers,
                unreachable_s=round(time.monotonic() - self._unreachable_since, 1),
            )
        self._unreachable_since = None
        self.error = None
        self.reachable = True
