"""Two workers share the partitions; one is killed mid-stream and the other takes its partitions
over. Nothing is lost; a record may be repeated only under the same event id."""

from __future__ import annotations

import signal

import pytest

from streams.embedded_broker import free_port
from tests.conftest import publish_values, read_topic
from tests.integration.test_pipeline import assert_exactly_once, make_stream

pytestmark = pytest.mark.integration


def test_one_of_two_workers_killed_mid_stream(loaded_settings, start_worker):
    settings = loaded_settings
    first = start_worker(settings, "first")
    second_settings = settings.model_copy(
        update={"data_dir": settings.data_dir.with_name("second"), "web_port": free_port()}
    )
    second = start_worker(second_settings, "second")
    first.wait_ready(timeout_s=90)
    second.wait_ready(timeout_s=90)
    assert first.readiness()["assigned_partitions"] + second.readiness()["assigned_partitions"] >= settings.partitions
    values, good_keys, _ = make_stream(6_000, malformed_every=10**9, seed=11)
    publish_values(settings, values)

    partial = read_topic(settings, settings.topic_enriched, expected=1_500, timeout_s=120, settle_s=0)
    assert len(partial) < len(good_keys)
    first.stop(signal.SIGKILL)

    results = read_topic(settings, settings.topic_enriched, expected=len(good_keys), timeout_s=240)
    assert_exactly_once(results, good_keys)
    assert second.process is not None and second.process.poll() is None
