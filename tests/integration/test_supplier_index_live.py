"""The supplier index follows the compacted topic while the worker runs, and across restarts."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from domain.suppliers import Supplier
from streams.supplier_loading import delete_suppliers, publish_supplier_records, supplier_record
from tests.conftest import publish_values, read_topic

pytestmark = pytest.mark.integration

NEW_SUPPLIER = Supplier(
    supplier_id="NEW0001",
    name="ZEPHYRINE QUANTUM WIDGETS LLC",
    alt_name="",
    address="1 MAIN ST",
    city="SPRINGFIELD",
    state="IL",
    postal_code="62701",
    country="US",
    category="business",
    code="",
)


def payee(record_id: str, name: str) -> tuple[bytes, bytes]:
    value = {"source_system": "ap", "source_record_id": record_id, "payee_name": name}
    return f"ap:{record_id}".encode(), json.dumps(value).encode()


def wait_for_suppliers(worker, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = worker.readiness()
        if status and status["suppliers"] == count:
            return
        time.sleep(0.2)
    raise AssertionError(f"index never reached {count} suppliers: {worker.readiness()}")


def result_for(settings, key: str, expected_total: int) -> dict:
    results = read_topic(settings, settings.topic_enriched, expected=expected_total, timeout_s=60, settle_s=0.5)
    return next(result for result in results if result["record_key"] == key)


def test_upsert_and_delete_apply_while_running_and_survive_restart(loaded_settings, start_worker):
    settings = loaded_settings
    worker = start_worker(settings, "first")
    worker.wait_ready(timeout_s=90)
    baseline = worker.readiness()["suppliers"]

    asyncio.run(publish_supplier_records(settings, [supplier_record(NEW_SUPPLIER)], total=1))
    wait_for_suppliers(worker, baseline + 1)
    publish_values(settings, [payee("1", "Zephyrine Quantum Widgets, L.L.C.")])
    matched = result_for(settings, "ap:1", 1)
    assert matched["match"]["supplier_id"] == "NEW0001"
    assert matched["match"]["decision"] == "matched"

    # A restart keeps the change (local snapshot + topic), then a tombstone removes it live.
    worker.stop()
    restarted = start_worker(settings, "second")
    restarted.wait_ready(timeout_s=90)
    assert restarted.readiness()["suppliers"] == baseline + 1
    asyncio.run(delete_suppliers(settings, ["NEW0001"]))
    wait_for_suppliers(restarted, baseline)
    publish_values(settings, [payee("2", "Zephyrine Quantum Widgets, L.L.C.")])
    unmatched = result_for(settings, "ap:2", 2)
    assert unmatched["match"]["supplier_id"] != "NEW0001"
    assert unmatched["versions"]["index"] != matched["versions"]["index"]
