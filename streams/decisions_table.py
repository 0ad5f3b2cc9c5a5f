"""Every worker's copy of the reviewers' decisions in force, read from the compacted decisions topic.

Like the supplier index (streams/supplier_index.py) each worker reads the whole topic itself,
with no consumer group, from the beginning: decisions are few (one per reviewed payee and
scope), so there is no snapshot. The worker starts processing once it has caught up, and new
decisions are applied as they arrive (a fetch waits at most ``FETCH_MAX_WAIT_MS``), so a
reviewer's decision reaches every worker within a fraction of a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from mode import Service
from pydantic import ValidationError

from domain.decisions import DecisionTable
from schemas.decisions import ReviewDecision
from streams.kafka_io import caught_up, wait_for_partitions

log = structlog.get_logger(__name__)

FETCH_MAX_WAIT_MS = 100
POLL_TIMEOUT_MS = 200


def apply_decision_record(table: DecisionTable, key: bytes | None, value: bytes | None) -> bool:
    """Apply one decisions-topic record; False (and the table unchanged) if it is unusable."""
    if key is None:
        return False
    if value is None:
        table.put(key.decode(), None)
        return True
    try:
        decision = ReviewDecision.model_validate_json(value)
    except ValidationError:
        return False
    if decision.key != key.decode():
        return False
    table.put(decision.key, decision)
    return True


class DecisionTableService(Service):
    def __init__(self, *, kafka_options: Mapping[str, Any], topic: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._kafka_options = kafka_options  # streams.kafka_security.kafka_client_options
        self._topic = topic
        self.table = DecisionTable()
        self.rejected_records = 0
        self._caught_up = asyncio.Event()

    @property
    def ready(self) -> bool:
        return self._caught_up.is_set()

    async def wait_ready(self) -> None:
        await self._caught_up.wait()

    @Service.task
    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kafka_options,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await consumer.start()
        try:
            partitions = await wait_for_partitions(consumer, self._topic)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            while not self.should_stop:
                batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
                for records in batches.values():
                    for record in records:
                        if not apply_decision_record(self.table, record.key, record.value):
                            self.rejected_records += 1
                            log.warning(
                                "decision_record_rejected", partition=record.partition, offset=record.offset
                            )
                if not self.ready and await caught_up(consumer, partitions):
                    log.info("decision_table_ready", decisions=len(self.table))
                    self._caught_up.set()
        finally:
            await consumer.stop()
