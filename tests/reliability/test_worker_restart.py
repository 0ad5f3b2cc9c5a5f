"""A worker SIGKILLed mid-stream and restarted: its index comes back whole, nothing is lost, and
records processed again after the kill repeat only under the same event ids."""

from __future__ import annotations

import signal

import pytest

from tests.conftest import publish_values, read_topic
from tests.integration.test_pipeline import assert_exactly_once, make_stream

pytestmark = pytest.mark.integration


def test_worker_killed_mid_stream_loses_nothing(loaded_settings, start_worker):
    settings = loaded_settings
    values, good_keys, _ = make_stream(6_000, malformed_every=10**9)
    worker = start_worker(settings, "first")
    worker.wait_ready(timeout_s=90)
    suppliers_before = worker.readiness()["suppliers"]
    publish_values(settings, values)

    # Kill once some results are out but well before the end.
    partial = read_topic(settings, settings.topic_enriched, expected=1_000, timeout_s=120, settle_s=0)
    assert len(partial) < len(good_keys)
    worker.stop(signal.SIGKILL)

    restarted = start_worker(settings, "second")
    restarted.wait_ready(timeout_s=90)
    # The supplier index comes back whole (from its local snapshot plus the topic).
    assert restarted.readiness()["suppliers"] == suppliers_before > 0
    results = read_topic(settings, settings.topic_enriched, expected=len(good_keys), timeout_s=240)
    assert_exactly_once(results, good_keys)
