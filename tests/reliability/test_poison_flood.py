"""A flood of poison messages trips the dead-letter guard instead of being dead-lettered quietly."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from pydantic import SecretStr

from streams.embedded_broker import free_port
from tests.conftest import publish_values, read_topic

pytestmark = pytest.mark.integration

AUTHORIZED = {"Authorization": "Bearer operator-token-for-the-test"}


def test_poison_flood_pauses_the_worker_until_an_operator_resumes(loaded_settings, start_worker):
    guarded = loaded_settings.model_copy(
        update={
            "dlq_guard_window": 100,
            "dlq_guard_min_records": 50,
            "operator_token": SecretStr("operator-token-for-the-test"),
            "operator_port": free_port(),
        }
    )
    worker = start_worker(guarded)
    worker.wait_ready(timeout_s=90)

    poison = [(f"ap:{i}".encode(), b"{poison") for i in range(300)]
    good = [
        (f"ap:g{i}".encode(), json.dumps({"source_system": "ap", "source_record_id": f"g{i}", "payee_name": "ACME INC"}).encode())
        for i in range(5)
    ]
    publish_values(guarded, poison + good)

    letters = read_topic(guarded, guarded.topic_dlq, expected=50, timeout_s=60, settle_s=3)
    # The guard trips at the first record over the ratio after min_records, and holds the rest.
    assert 50 <= len(letters) < 300
    status = worker.readiness()
    assert status is None or status["dead_letter_guard_tripped"] is True
    resume_url = f"http://{guarded.operator_host}:{guarded.operator_port}/dead-letter-guard/resume"
    # Not on the web server that serves /ready and /metrics, and not without the token.
    for url, headers in (
        (f"http://{guarded.web_host}:{guarded.web_port}/dead-letter-guard/resume", AUTHORIZED),
        (resume_url, {}),
        (resume_url, {"Authorization": "Bearer not-the-token"}),
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, method="POST", data=b"", headers=headers), timeout=5)
        assert refused.value.code in (401, 404, 405)
    assert worker.readiness() is None or worker.readiness()["dead_letter_guard_tripped"] is True
    request = urllib.request.Request(resume_url, method="POST", data=b"", headers=AUTHORIZED)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"resumed": True}
    # Resumed: the guard re-arms over a fresh window, so the flood trips it again later on,
    # and nothing is dropped: every record is accounted for once resumed enough times.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        letters = read_topic(guarded, guarded.topic_dlq, expected=300, timeout_s=3, settle_s=0)
        if len(letters) >= 300:
            break
        urllib.request.urlopen(request, timeout=5).close()
    results = read_topic(guarded, guarded.topic_enriched, expected=5, timeout_s=30, settle_s=1)
    assert len({letter["event_id"] for letter in letters}) == 300
    assert len(results) == 5
