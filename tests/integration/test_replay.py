"""Replay on the real (embedded Tansu) broker: offset ranges, time ranges, filters, dead letters."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from streams.replay import Bound, ReplayFilter, replay
from tests.conftest import publish_values, read_topic

pytestmark = pytest.mark.integration


def records(source: str, ids: range) -> list[tuple[bytes, bytes]]:
    return [
        (
            f"{source}:{i}".encode(),
            json.dumps({"source_system": source, "source_record_id": str(i), "payee_name": f"ACME TOOLS {i} INC"}).encode(),
        )
        for i in ids
    ]


def replayed(results: list[dict], run_id: str) -> list[dict]:
    return [result for result in results if result.get("replay_run_id") == run_id]


def test_replay_by_time_and_filter_is_a_newer_delivery_of_the_same_outcome(loaded_settings, start_worker):
    settings = loaded_settings
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)

    publish_values(settings, records("east", range(20)) + records("west", range(10)))
    time.sleep(1.5)
    boundary = Bound(timestamp_ms=int(time.time() * 1000))
    time.sleep(0.5)
    publish_values(settings, records("east", range(20, 30)))
    first_pass = read_topic(settings, settings.topic_enriched, expected=40, timeout_s=90, settle_s=1)
    original_ids = {result["record_key"]: result["event_id"] for result in first_pass}
    assert len(original_ids) == 40

    summary = asyncio.run(
        replay(settings, start=boundary, stop=None, record_filter=ReplayFilter.parse("source=east"), run_id="run-time")
    )
    assert summary.sent == 10 and summary.failed == 0
    results = read_topic(settings, settings.topic_enriched, expected=50, timeout_s=90, settle_s=1)
    again = replayed(results, "run-time")
    assert {result["record_key"] for result in again} == {f"east:{i}" for i in range(20, 30)}
    # A replay is a new delivery (new ids, a higher order key) of the same outcome (same
    # result version): consumers keeping the newest result per record take it, nothing changes.
    original = {result["record_key"]: result for result in first_pass}
    for result in again:
        before = original[result["record_key"]]
        assert result["event_id"] != before["event_id"]
        assert result["result_version"] == before["result_version"]
        assert result["order_key"] > before["order_key"]

    # Replaying everything skips the replay copies themselves.
    everything = asyncio.run(replay(settings, start=None, stop=None, run_id="run-all"))
    assert everything.sent == 40 and everything.skipped == 10


def test_replay_offset_range_of_one_partition(loaded_settings, start_worker):
    settings = loaded_settings
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    publish_values(settings, records("ap", range(40)))
    first_pass = read_topic(settings, settings.topic_enriched, expected=40, timeout_s=90, settle_s=1)
    on_partition_0 = sorted(r["source"]["offset"] for r in first_pass if r["source"]["partition"] == 0)
    assert len(on_partition_0) >= 3

    summary = asyncio.run(replay(settings, start=Bound(offset=1), stop=Bound(offset=3), partition=0, run_id="run-offsets"))
    assert summary.sent == 2 and summary.per_partition == {0: (1, 3)}
    results = read_topic(settings, settings.topic_enriched, expected=42, timeout_s=60, settle_s=1)
    assert len(replayed(results, "run-offsets")) == 2


def test_replay_dead_letters_resends_original_bytes(loaded_settings, start_worker):
    settings = loaded_settings
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    publish_values(settings, [(b"ap:bad", b"{broken")])
    read_topic(settings, settings.topic_dlq, expected=1, timeout_s=60, settle_s=0)

    summary = asyncio.run(replay(settings, start=None, stop=None, from_dead_letters=True, run_id="run-dlq"))
    assert summary.sent == 1
    letters = read_topic(settings, settings.topic_dlq, expected=2, timeout_s=60, settle_s=1)
    assert [letter["replay_run_id"] for letter in letters] == [None, "run-dlq"]
    assert letters[0]["original_value_b64"] == letters[1]["original_value_b64"]
