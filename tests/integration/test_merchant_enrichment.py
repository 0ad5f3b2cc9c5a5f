"""Merchant data through the real broker and a worker: business payees get the provider's data
from the merchant agent, individuals are never sent to it, and records that need no lookup do
not wait for a slow provider."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from domain.classify import classify_payee
from tests.conftest import publish_values, read_topic
from tests.fake_merchant import FakeMerchantProvider

pytestmark = pytest.mark.integration

BUSINESS = "ACME TOOLS INC"
NO_LOOKUP = ["John Smith", "Maria L. Garcia", "City of Springfield"]
PROVIDER_DELAY_S = 4.0


@pytest.fixture
def fake_provider() -> Iterator[FakeMerchantProvider]:
    server = FakeMerchantProvider().start()
    yield server
    server.stop()


def payee(record_id: str, name: str, **extra: object) -> tuple[bytes, bytes]:
    value = {"source_system": "ap", "source_record_id": record_id, "payee_name": name, **extra}
    return f"ap:{record_id}".encode(), json.dumps(value).encode()


def test_business_payees_get_merchant_data_without_delaying_the_rest(loaded_settings, start_worker, fake_provider):
    settings = loaded_settings.model_copy(
        update={
            "merchant_provider": "track",
            "track_base_url": fake_provider.base_url,
            "track_timeout_s": 10.0,
            "merchant_batch_wait_s": 0.2,
        }
    )
    assert classify_payee(BUSINESS).entity_type == "business"
    fake_provider.mode, fake_provider.delay_s = "slow", PROVIDER_DELAY_S
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)

    businesses = [
        payee(f"b{i}", BUSINESS, address_lines=["P.O. Box 12"], city="Austin", state="TX", postal_code="78701")
        for i in range(5)
    ]
    others = [payee(f"o{i}-{j}", name) for i in range(5) for j, name in enumerate(NO_LOOKUP)]
    started = time.monotonic()
    publish_values(settings, businesses + others)

    fast = read_topic(settings, settings.topic_enriched, expected=len(others), timeout_s=60, settle_s=0)
    other_keys = {key.decode() for key, _ in others}
    assert other_keys <= {result["record_key"] for result in fast}
    assert time.monotonic() - started < PROVIDER_DELAY_S + 3  # they did not queue behind the provider
    assert all(result["enrichment"] is None for result in fast if result["record_key"] in other_keys)

    results = read_topic(settings, settings.topic_enriched, expected=len(businesses) + len(others), timeout_s=60)
    by_key = {result["record_key"]: result for result in results}
    assert set(by_key) == other_keys | {key.decode() for key, _ in businesses}
    for key, _ in businesses:
        result = by_key[key.decode()]
        assert result["enrichment"]["status"] == "found" and result["enrichment"]["mcc"] == "5251"
        assert result["enrichment"]["accepts_cards"] is True
        assert result["address"]["one_line"] == "PO BOX 12, AUSTIN, TX 78701"

    sent = {search["merchant_name"] for search in fake_provider.searches}
    assert sent == {BUSINESS}  # never an individual's (or a government's) name
    assert fake_provider.requests <= 2  # batched and cached, not one call per record

    audits = read_topic(settings, settings.topic_audit, expected=1, timeout_s=30)
    # One audit event per record, listing its decisions.
    merchant_audits = {
        audit["record_key"]: decision
        for audit in audits
        for decision in audit["decisions"]
        if decision["action"] == "merchant_enriched"
    }
    assert set(merchant_audits) == {key.decode() for key, _ in businesses}
    assert all(decision["outcome"]["status"] == "found" for decision in merchant_audits.values())
