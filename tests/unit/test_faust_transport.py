"""The worker's producer is idempotent on Apache Kafka, and plain on the embedded broker."""

from __future__ import annotations

import pytest

from streams.app import faust_app
from streams.settings import Settings


@pytest.mark.parametrize(("flavor", "idempotent"), [("kafka", True), ("tansu", False)])
def test_worker_producer_idempotence_follows_the_broker(tmp_path, flavor, idempotent):
    settings = Settings(broker_url="kafka://127.0.0.1:9092", broker_flavor=flavor, data_dir=tmp_path)
    app = faust_app(settings, f"transport-test-{flavor}")
    producer = app.producer
    # The keyword arguments the aiokafka producer is created with (nothing connects here).
    options = {**producer._settings_default(), **producer._settings_extra()}
    assert options.get("enable_idempotence", False) is idempotent
    assert options["acks"] in (-1, "all")
