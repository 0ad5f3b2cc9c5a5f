"""End to end on the real (embedded Tansu) broker with a worker subprocess."""

from __future__ import annotations

import csv
import json
import random
import time
from collections import Counter

import pytest

from schemas.events import EnrichedPayee
from tests.conftest import FIXTURE_SUPPLIERS, publish_values, read_topic

pytestmark = pytest.mark.integration

PERSON_NAMES = ["JOHN SMITH", "MARIA GARCIA", "Robert Johnson", "LEE, JENNIFER", "Patricia Brown"]
MALFORMED_VALUES = [
    b"{not json",
    b'{"source_system": "ap", "source_record_id": "x"}',  # no payee name
    b'{"source_system": "ap", "source_record_id": "x", "payee_name": ""}',
    b'{"source_system": "ap", "source_record_id": "x", "payee_name": "' + b"A" * 5000 + b'"}',
    b'{"source_system": "ap", "source_record_id": "x", "payee_name": "ACME", "amount": "lots"}',
    b"[1, 2, 3]",
    b"\xff\xfe\x00garbage",
    b'{"source_system": "ap", "source_record_id": "x", "payee_name": "' + b"B" * 70_000 + b'"}',
]


def supplier_names() -> list[str]:
    with FIXTURE_SUPPLIERS.open(newline="") as handle:
        return [row["name"] for row in csv.DictReader(handle)]


def make_stream(count: int, malformed_every: int, seed: int = 7) -> tuple[list[tuple[bytes, bytes]], set[str], int]:
    """Keyed raw values; returns them, the record keys of the good ones, and the bad count."""
    rng = random.Random(seed)
    names = supplier_names() + PERSON_NAMES
    values, good_keys, bad = [], set(), 0
    for i in range(count):
        key = f"ap:{i}".encode()
        if i % malformed_every == malformed_every - 1:
            values.append((key, MALFORMED_VALUES[bad % len(MALFORMED_VALUES)]))
            bad += 1
            continue
        record = {
            "source_system": "ap",
            "source_record_id": str(i),
            "payee_name": rng.choice(names),
            "amount": f"{rng.uniform(1, 10_000):.2f}",
            "currency": "USD",
        }
        values.append((key, json.dumps(record).encode()))
        good_keys.add(f"ap:{i}")
    return values, good_keys, bad


def assert_exactly_once(results: list[dict], good_keys: set[str]) -> None:
    by_key: dict[str, set[str]] = {}
    for result in results:
        by_key.setdefault(result["record_key"], set()).add(result["event_id"])
    assert set(by_key) == good_keys, f"missing {len(good_keys - set(by_key))}, unexpected {len(set(by_key) - good_keys)}"
    # Redelivery may repeat a result, but always under the same event id.
    assert all(len(ids) == 1 for ids in by_key.values())


def test_ten_thousand_records_with_malformed_ones(loaded_settings, start_worker):
    settings = loaded_settings
    values, good_keys, bad = make_stream(10_000, malformed_every=100)
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    assert publish_values(settings, values) == 10_000

    results = read_topic(settings, settings.topic_enriched, expected=len(good_keys), timeout_s=240)
    letters = read_topic(settings, settings.topic_dlq, expected=bad, timeout_s=30)

    assert_exactly_once(results, good_keys)
    assert len({letter["event_id"] for letter in letters}) == bad == 100
    assert Counter(letter["stage"] for letter in letters) == {"validate": bad}
    assert {letter["error_type"] for letter in letters} >= {"malformed_json", "schema_violation", "oversized"}
    for result in results[:50]:
        parsed = EnrichedPayee.model_validate(result)  # consumers' contract
        assert parsed.source is not None and parsed.source.topic == settings.topic_raw
        assert parsed.event_id == EnrichedPayee.make_event_id(parsed.source, None)
        assert parsed.order_key == parsed.source.offset


def test_health_ready_and_metrics(loaded_settings, start_worker):
    import urllib.request

    settings = loaded_settings
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    base = f"http://{settings.web_host}:{settings.web_port}"
    with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "alive"}
    ready = worker.readiness()
    assert ready and ready["ready"] and ready["suppliers"] > 0
    publish_values(settings, make_stream(20, malformed_every=10)[0])
    read_topic(settings, settings.topic_enriched, expected=18, timeout_s=60, settle_s=0)
    time.sleep(1)
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    for series in (
        "payee_stream_records_in_total",
        "payee_stream_records_out_total",
        "payee_stream_dead_letters_total",
        "payee_stream_stage_latency_seconds_bucket",
        "payee_stream_match_outcomes_total",
        "payee_stream_classifications_total",
        "payee_stream_end_to_end_latency_seconds_bucket",
        "payee_stream_match_score_bucket",
        "payee_stream_supplier_index_size",
        "payee_stream_supplier_index_ready",
        "payee_stream_consumer_lag{",
        "payee_stream_llm_calls_total",
        "payee_stream_llm_tokens_total",
        "payee_stream_llm_breaker_open",
        "payee_stream_dlq_guard_tripped",
    ):
        assert series in text, series
    # Counts reflect what flowed: 20 in, 2 dead letters.
    assert 'payee_stream_dead_letters_total{reason="malformed_json",stage="validate"}' in text
