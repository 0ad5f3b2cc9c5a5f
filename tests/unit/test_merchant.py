"""Merchant-data provider: never for individuals, the HTTP client's guard rails against the fake
provider (breaker, timeouts, retries, cache, batching), and the agent's core end to end."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import date

import pytest

from domain.matching import SupplierIndex
from domain.merchant import (
    LookupFailure,
    MerchantData,
    MerchantPolicy,
    MerchantQuery,
    enrich_batch,
    merchant_lookup_allowed,
    recency,
)
from domain.merchant_http import HttpMerchantProvider, HttpProviderConfig
from domain.outcome import CoreConfig, HandOff, merchant_stage_outcomes, result_decisions
from domain.pipeline import Enrichment, Thresholds, enrich
from schemas.events import ClassificationBlock, DeadLetter, EnrichedPayee, PayeeRecord, SourcePosition, Versions
from tests.fake_merchant import FakeMerchantProvider

TODAY = date(2026, 12, 1)
POLICY = MerchantPolicy(min_confidence=0.8)
VERSIONS = Versions(pipeline="test", rules="test", index="test")
THRESHOLDS = Thresholds(review=0.75, llm=0.7)
CONFIG = CoreConfig(THRESHOLDS, 64 * 1024, 100_000, llm_enabled=False, merchant_policy=POLICY)
SOURCE = SourcePosition(topic="payees.raw", partition=0, offset=7)


def classification(entity_type: str, confidence: float = 0.95, method: str = "rules") -> ClassificationBlock:
    return ClassificationBlock(entity_type=entity_type, confidence=confidence, method=method, reason="test")


@pytest.mark.parametrize(
    "block, allowed",
    [
        (classification("business"), True),
        (classification("business", confidence=0.6), False),  # unsure: it may be a person
        (classification("business", method="degraded"), False),  # the LLM was down: a guess
        (classification("individual"), False),
        (classification("individual", confidence=1.0, method="reviewer"), False),
        (classification("unknown", confidence=1.0), False),
        (classification("government"), False),
    ],
)
def test_only_confident_businesses_never_individuals(block, allowed):
    assert merchant_lookup_allowed(block, POLICY) is allowed


def test_recency_buckets():
    assert recency(date(2026, 11, 20), TODAY) == "last_30_days"
    assert recency(date(2026, 9, 15), TODAY) == "last_90_days"
    assert recency(date(2026, 1, 1), TODAY) == "last_year"
    assert recency(date(2020, 1, 1), TODAY) == "over_a_year"
    assert recency(None, TODAY) is None


@pytest.fixture(scope="module")
def server() -> Iterator[FakeMerchantProvider]:
    fake = FakeMerchantProvider().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeMerchantProvider) -> FakeMerchantProvider:
    server.reset()
    return server


def make_provider(fake: FakeMerchantProvider, **overrides: object) -> HttpMerchantProvider:
    settings: dict[str, object] = dict(
        name="track", base_url=fake.base_url, api_key="secret-key", timeout_s=2.0, max_retries=0,
        rate_per_s=1000.0, burst=1000, max_concurrency=4, cache_size=100, breaker_failure_threshold=2,
        breaker_reset_s=0.3, max_batch=50,
    )
    settings.update(overrides)
    return HttpMerchantProvider(HttpProviderConfig(**settings), backoff_base_s=0.01)  # type: ignore[arg-type]


def query(name: str, reference: str = "0") -> MerchantQuery:
    return MerchantQuery(reference, name, "PO BOX 12", "AUSTIN", "TX", "78701", "US")


async def test_found_and_not_found(fake):
    provider = make_provider(fake)
    found, unknown = await provider.lookup([query("Acme Tools Inc", "0"), query("NOBODY LLC", "1")])
    await provider.aclose()
    assert found == MerchantData(
        found=True, merchant_name="ACME TOOLS", merchant_id="M-1001", mcc="5251", mcc_description="Hardware stores",
        accepts_cards=True, level2=True, level3=False, last_active=date(2026, 11, 20), match_confidence=0.93,
    )
    assert unknown == MerchantData(found=False)
    assert fake.requests == 1  # one request for the batch
    assert fake.authorization == ["Bearer secret-key"]
    assert fake.searches[0]["address"] == {"street": "PO BOX 12", "city": "AUSTIN", "state": "TX",
                                           "postal_code": "78701", "country": "US"}


async def test_batches_are_split_deduplicated_and_cached(fake):
    provider = make_provider(fake, max_batch=2)
    queries = [query(f"SHOP {n % 3}", str(n)) for n in range(6)]  # three distinct businesses
    outcomes = await provider.lookup(queries)
    assert len(outcomes) == 6 and fake.requests == 2 and len(fake.searches) == 3
    await provider.lookup(queries)
    await provider.aclose()
    assert fake.requests == 2 and provider.stats.cache_hits == 6


async def test_breaker_opens_fails_fast_then_recovers(fake):
    provider = make_provider(fake)
    fake.mode = "fail500"
    for _ in range(2):
        [outcome] = await provider.lookup([query("ACME TOOLS INC")])
        assert outcome == LookupFailure("HTTP 500")
    assert provider.breaker_state == "open" and provider.stats.breaker_opens == 1
    requests = fake.requests
    [outcome] = await provider.lookup([query("ACME TOOLS INC")])
    assert outcome == LookupFailure("circuit breaker open") and fake.requests == requests  # not even asked

    fake.mode = "ok"
    await asyncio.sleep(0.35)
    assert provider.breaker_state == "half_open"
    [outcome] = await provider.lookup([query("ACME TOOLS INC")])
    await provider.aclose()
    assert isinstance(outcome, MerchantData) and outcome.found
    assert provider.breaker_state == "closed"


async def test_slow_provider_times_out_and_is_retried(fake):
    fake.mode, fake.delay_s = "slow", 1.0
    provider = make_provider(fake, timeout_s=0.2, max_retries=1)
    started = time.monotonic()
    [outcome] = await provider.lookup([query("ACME TOOLS INC")])
    await provider.aclose()
    assert outcome == LookupFailure("timed out")
    assert time.monotonic() - started < 1.0
    assert provider.stats.timeouts == 2 and provider.stats.retries == 1


async def test_malformed_reply_is_not_retried(fake):
    fake.mode = "malformed"
    provider = make_provider(fake, max_retries=3)
    [outcome] = await provider.lookup([query("ACME TOOLS INC")])
    await provider.aclose()
    assert outcome == LookupFailure("reply did not match the schema") and fake.requests == 1


async def test_unreachable_provider_is_a_failure_not_an_exception():
    provider = HttpMerchantProvider(
        HttpProviderConfig(name="track", base_url="http://127.0.0.1:9", api_key="", max_retries=0)
    )
    [outcome] = await provider.lookup([query("ACME TOOLS INC")])
    await provider.aclose()
    assert isinstance(outcome, LookupFailure) and outcome.reason.startswith("connection failed")


def enrichment(name: str, **record: object) -> Enrichment:
    index = SupplierIndex(match_threshold=0.85, ambiguity_margin=0.05)
    payee = PayeeRecord(source_system="ap", source_record_id=name, payee_name=name, **record)
    return enrich(payee, index, source=SOURCE)


async def test_individuals_never_reach_the_provider(fake):
    provider = make_provider(fake)
    batch = [
        enrichment("ACME TOOLS INC", address_lines=["P.O. Box 12"], city="Austin", state="TX", postal_code="78701"),
        enrichment("JOHN SMITH"),
        enrichment("Maria L. Garcia"),
    ]
    assert batch[0].classification.entity_type == "business"
    assert {e.classification.entity_type for e in batch[1:]} == {"individual"}
    out = await enrich_batch(batch, provider, POLICY, TODAY)
    await provider.aclose()
    assert [search["merchant_name"] for search in fake.searches] == ["ACME TOOLS INC"]
    assert fake.searches[0]["address"]["street"] == "PO BOX 12"  # the normalised address is asked
    assert out[0].merchant is not None and out[0].merchant.status == "found" and out[0].merchant.mcc == "5251"
    assert out[0].merchant.recency == "last_30_days" and "merchant" in out[0].timings_ms
    assert out[1].merchant is None and out[2].merchant is None


async def test_agent_core_results_and_audit_even_when_the_provider_is_down(fake):
    provider = make_provider(fake)
    fake.mode = "fail500"
    business = enrichment("ACME TOOLS INC")
    at = [SourcePosition(topic="payees.merchant", partition=1, offset=offset) for offset in (3, 4)]
    hand_offs = [HandOff(b"ap:1", business.to_json(), at[0]), HandOff(b"ap:2", b"{broken", at[1])]
    outcomes = await merchant_stage_outcomes(hand_offs, provider, VERSIONS, CONFIG, TODAY)
    await provider.aclose()
    result_outcome, rejected = outcomes
    result = result_outcome.result
    assert result is not None and result.source == SOURCE  # under the ids of its source record
    assert {output.role for output in result_outcome.outputs} == {"enriched", "audit"}
    assert EnrichedPayee.model_validate_json(result_outcome.outputs[0].value) == result
    assert result.enrichment is not None and result.enrichment.status == "unavailable"
    assert result.enrichment.reason == "HTTP 500"
    assert rejected.letter is not None and rejected.letter.stage == "merchant"
    [dead_letter] = [output for output in rejected.outputs if output.role == "dlq"]
    assert DeadLetter.model_validate_json(dead_letter.value).source_offset == 4
    [audit] = [decision for decision in result_decisions(result, sent_to_llm=False) if decision.action == "merchant_enriched"]
    assert audit.outcome["status"] == "unavailable" and audit.outcome["provider"] == "track"
    assert "ACME" not in json.dumps(audit.outcome)  # no payee names in audit events


def test_hand_off_keeps_the_address_and_merchant_blocks():
    business = enrichment("ACME TOOLS INC", address_lines=["1 Main St"], city="Austin", state="TX", postal_code="78701")
    assert Enrichment.from_json(business.to_json()) == business
