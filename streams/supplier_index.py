"""Keeps every worker's in-memory ``SupplierIndex`` in step with the compacted ``suppliers`` topic.

Why not a Faust GlobalTable: a worker restart would replay the whole changelog through Faust's
recovery (slow for 350k+ rows), and recovery relies on ListOffsets end offsets that the
embedded broker reports wrongly. Instead each worker reads the topic itself, with no consumer
group, and keeps a local snapshot (index + offsets, written atomically) so a restart loads the
snapshot and reads only what changed since. "Caught up" compares positions with the high-water
mark carried by Fetch responses, which both Apache Kafka and Tansu report correctly.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from domain.matching import SupplierIndex, freeze_built_index, gc_paused, snapshot
from domain.suppliers import supplier_from_dict
from streams.kafka_io import caught_up, wait_for_partitions

log = structlog.get_logger(__name__)

SNAPSHOT_INDEX_FILE = "index.bin"
SNAPSHOT_OFFSETS_FILE = "offsets.json"


def apply_change(index: SupplierIndex, key: bytes | None, value: bytes | None) -> bool:
    """Apply one ``suppliers`` record: a value upserts, a tombstone deletes. False if unusable."""
    if key is None:
        return False
    if value is None:
        index.delete(key.decode())
        return True
    try:
        supplier = supplier_from_dict(json.loads(value))
    except (ValueError, KeyError, TypeError):
        return False
    index.upsert(supplier)
    return True


# Longest stretch of index changes applied without yielding to the event loop.
APPLY_SLICE_S = 0.02


class SupplierIndexService(Service):
    def __init__(
        self,
        *,
        kafka_options: Mapping[str, Any],
        topic: str,
        snapshot_dir: Path,
        snapshot_interval_s: float,
        index_factory: Callable[[], SupplierIndex],
        on_change: Callable[[SupplierIndex], None] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)
        self._kafka_options = kafka_options  # streams.kafka_security.kafka_client_options
        self._topic = topic
        self._snapshot_dir = snapshot_dir
        self._snapshot_interval_s = snapshot_interval_s
        self._index_factory = index_factory
        self._on_change = on_change
        self.index: SupplierIndex = index_factory()
        self._offsets: dict[int, int] = {}
        self._dirty = False
        self._caught_up = asyncio.Event()
        self.rejected_changes = 0
        self.ready_after_s: float | None = None

    @property
    def ready(self) -> bool:
        return self._caught_up.is_set()

    async def wait_ready(self) -> None:
        await self._caught_up.wait()

    def _load_snapshot(self) -> None:
        index_path = self._snapshot_dir / SNAPSHOT_INDEX_FILE
        offsets_path = self._snapshot_dir / SNAPSHOT_OFFSETS_FILE
        if not (index_path.exists() and offsets_path.exists()):
            return
        try:
            offsets = json.loads(offsets_path.read_text())
            if offsets.get("topic") != self._topic:
                return
            self.index = snapshot.restore(self._index_factory(), index_path)
            self._offsets = {int(p): int(o) for p, o in offsets["next_offsets"].items()}
            log.info("supplier_snapshot_loaded", suppliers=len(self.index), offsets=self._offsets)
        except Exception as exc:  # a corrupt snapshot is rebuilt from the topic, never fatal
            log.warning("supplier_snapshot_unusable", error=repr(exc))
            self.index, self._offsets = self._index_factory(), {}

    def _write_snapshot(self) -> None:
        staging = self._snapshot_dir.with_name(self._snapshot_dir.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        snapshot.save(self.index, staging / SNAPSHOT_INDEX_FILE)
        (staging / SNAPSHOT_OFFSETS_FILE).write_text(
            json.dumps({"topic": self._topic, "next_offsets": self._offsets})
        )
        backup = self._snapshot_dir.with_name(self._snapshot_dir.name + ".old")
        shutil.rmtree(backup, ignore_errors=True)
        if self._snapshot_dir.exists():
            os.replace(self._snapshot_dir, backup)
        os.replace(staging, self._snapshot_dir)
        shutil.rmtree(backup, ignore_errors=True)

    async def on_start(self) -> None:
        self._started_at = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, self._load_snapshot)
        if self._on_change:
            self._on_change(self.index)

    @Service.task
    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kafka_options,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            max_poll_records=5000,
        )
        await consumer.start()
        try:
            partitions = await wait_for_partitions(consumer, self._topic)
            consumer.assign(partitions)
            for tp in partitions:
                if tp.partition in self._offsets:
                    consumer.seek(tp, self._offsets[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            last_snapshot = time.monotonic()
            while not self.should_stop:
                batches = await consumer.getmany(timeout_ms=200)
                slice_started = time.monotonic()
                # A batch of changes is a bulk load (index.upsert_many). The pause spans the
                # yields below: other tasks run a few milliseconds without cyclic collection.
                with gc_paused():
                    for tp, records in batches.items():
                        for record in records:
                            if not apply_change(self.index, record.key, record.value):
                                self.rejected_changes += 1
                            self._offsets[tp.partition] = record.offset + 1
                            if time.monotonic() - slice_started >= APPLY_SLICE_S:
                                # Building the index is CPU work on the event loop: let heartbeats,
                                # deliveries and /ready through between slices.
                                await asyncio.sleep(0)
                                slice_started = time.monotonic()
                        self._dirty = self._dirty or bool(records)
                if batches and self._on_change:
                    self._on_change(self.index)
                if self._snapshot_ahead_of_topic(consumer, partitions):
                    # The topic is younger than our snapshot (an in-memory broker restarted,
                    # or the topic was recreated): rebuild from the topic.
                    log.warning("supplier_snapshot_ahead_of_topic", offsets=self._offsets)
                    self.index, self._offsets, self._dirty = self._index_factory(), {}, True
                    await consumer.seek_to_beginning(*partitions)
                    continue
                if not self.ready and await caught_up(consumer, partitions):
                    await self._mark_ready()
                    last_snapshot = time.monotonic()
                elif self._dirty and time.monotonic() - last_snapshot > self._snapshot_interval_s:
                    await self._snapshot()
                    last_snapshot = time.monotonic()
        finally:
            if self._dirty and self.ready:
                await self._snapshot()
            await consumer.stop()

    def _snapshot_ahead_of_topic(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
        for tp in partitions:
            highwater = consumer.highwater(tp)
            if highwater is not None and self._offsets.get(tp.partition, 0) > highwater:
                return True
        return False

    async def _mark_ready(self) -> None:
        self.ready_after_s = time.monotonic() - self._started_at
        log.info("supplier_index_ready", suppliers=len(self.index), seconds=round(self.ready_after_s, 2))
        freeze_built_index()
        if self._dirty:
            await self._snapshot()
        self._caught_up.set()

    async def _snapshot(self) -> None:
        # In the consuming task, so no change is applied while the index is written out.
        await asyncio.get_running_loop().run_in_executor(None, self._write_snapshot)
        self._dirty = False
