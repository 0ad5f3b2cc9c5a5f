"""The worker's producer is idempotent on Apache Kafka, and plain on the embedded broker."""

from __future__ import annotations

import pytest

from streams.kafka_io import worker_producer
from streams.settings import Settings


@pytest.mark.parametrize(("flavor", "idempotent"), [("kafka", True), ("tansu", False)])
async def test_worker_producer_idempotence_follows_the_broker(tmp_path, flavor, idempotent):
    settings = Settings(broker_url="kafka://127.0.0.1:9092", broker_flavor=flavor, data_dir=tmp_path)
    producer = worker_producer(settings)  # nothing connects until start()
    assert (producer._txn_manager is not None) is idempotent  # aiokafka keeps no public accessor
    assert producer._max_request_size > settings.max_message_bytes
