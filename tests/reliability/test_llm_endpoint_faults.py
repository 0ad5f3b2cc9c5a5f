"""A slow or failing LLM endpoint: the breaker opens, unsure records come out degraded, confident
records never wait for it, and the breaker closes again once the endpoint recovers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from domain.classify import classify_payee
from tests.conftest import publish_values, read_topic
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

# Names the rules are unsure of (below the LLM threshold): unknown words in a name-like shape.
UNSURE_NAMES = ["Zorblax Quintar", "Ocio Klm", "Kjzz Kbaq", "LOVE", "Blue Heron"]
CONFIDENT_NAMES = ["ACME TOOLS INC", "City of Springfield", "John Smith", "Dakota Valley Recycling LLC"]


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


def payees(prefix: str, names: list[str], copies: int) -> list[tuple[bytes, bytes]]:
    values = []
    for i in range(copies):
        for j, name in enumerate(names):
            record_id = f"{prefix}{i}-{j}"
            value = {"source_system": "ap", "source_record_id": record_id, "payee_name": name}
            values.append((f"ap:{record_id}".encode(), json.dumps(value).encode()))
    return values


def test_slow_then_failing_llm_degrades_without_stalling_then_recovers(loaded_settings, start_worker, fake_llm):
    settings = loaded_settings.model_copy(
        update={
            "llm_base_url": fake_llm.base_url,
            "llm_timeout_s": 0.5,
            "llm_max_retries": 1,
            "llm_breaker_failure_threshold": 3,
            "llm_breaker_reset_s": 3.0,
            "llm_cache_size": 0,
            # Faults of the endpoint are the subject here, so every unsure name goes to it.
            "llm_privacy": "permissive",
        }
    )
    threshold = settings.llm_threshold
    assert all(classify_payee(name).confidence < threshold for name in UNSURE_NAMES)
    assert all(classify_payee(name).confidence >= threshold for name in CONFIDENT_NAMES)
    fake_llm.mode, fake_llm.delay_s = "slow", 5.0

    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    unsure = payees("u", UNSURE_NAMES, copies=4)
    confident = payees("c", CONFIDENT_NAMES, copies=25)
    started = time.monotonic()
    publish_values(settings, unsure + confident)

    fast = read_topic(settings, settings.topic_enriched, expected=len(confident), timeout_s=60, settle_s=0)
    fast_seconds = time.monotonic() - started
    confident_keys = {key.decode() for key, _ in confident}
    # Confident records flow past the stuck LLM calls: each unsure record could hold a call
    # for timeout x attempts, and there are 20 of them.
    assert confident_keys <= {result["record_key"] for result in fast}
    assert fast_seconds < 20

    results = read_topic(settings, settings.topic_enriched, expected=len(unsure) + len(confident), timeout_s=90, settle_s=1)
    slow = [result for result in results if result["record_key"] not in confident_keys]
    assert {result["record_key"] for result in slow} == {key.decode() for key, _ in unsure}
    assert {result["classification"]["method"] for result in slow} == {"degraded"}
    assert all(result["status"] == "review" and "llm_unavailable" in result["review_reasons"] for result in slow)
    requests_while_failing = fake_llm.requests
    # The breaker opened: far fewer calls than records x attempts.
    assert requests_while_failing < len(unsure) * (settings.llm_max_retries + 1)

    # The endpoint recovers; after the reset time one half-open probe succeeds and closes the
    # breaker, and LLM answers return for everything after it.
    fake_llm.mode = "ok"
    time.sleep(settings.llm_breaker_reset_s + 0.5)
    publish_values(settings, payees("probe", UNSURE_NAMES[:1], copies=1))
    results = read_topic(settings, settings.topic_enriched, expected=len(results) + 1, timeout_s=60, settle_s=0.5)
    probe = [result for result in results if result["record_key"].startswith("ap:probe")]
    assert [result["classification"]["method"] for result in probe] == ["llm"]
    publish_values(settings, payees("r", UNSURE_NAMES, copies=1))
    results = read_topic(settings, settings.topic_enriched, expected=len(results) + len(UNSURE_NAMES), timeout_s=60, settle_s=1)
    recovered = [result for result in results if result["record_key"].startswith("ap:r")]
    assert {result["classification"]["method"] for result in recovered} == {"llm"}
    assert fake_llm.requests > requests_while_failing

    audit = read_topic(settings, settings.topic_audit, expected=1, timeout_s=30, settle_s=1)
    actions = {decision["action"] for event in audit for decision in event["decisions"]}
    assert {"sent_to_llm", "degraded", "sent_to_review"} <= actions
