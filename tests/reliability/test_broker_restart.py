"""The broker goes away and comes back on the same address with its data: the worker says so
clearly while it is gone and recovers on its own, losing nothing.

Which broker: this Tansu build keeps data in memory unless it is given an ``s3://`` storage
engine (``sqlite``/``libsql``, ``turso``, ``slatedb`` and ``postgres`` are not compiled in:
``FeatureNotEnabled``; ``file://`` is not a storage URL). So the test runs its own Tansu
(overriding the session ``broker`` fixture) on a fixed port with its data in an S3 bucket served
by moto, which outlives the broker process the way a real broker's log directory outlives it.
Stopping and starting that broker is a true restart with the data kept: topics, records,
committed group offsets and the compacted suppliers topic all come back.

What the worker does, measured before choosing what to assert: Faust and aiokafka retry a lost
broker forever, so the worker stays alive and resumes by itself once the broker is back; it
neither crashes nor hangs, so exiting for an orchestrator to restart it would only add a cold
start. What was missing was the "clear error": ``/ready`` kept answering 200 during the outage and
the only trace was a flood of aiokafka connection errors. ``streams/broker_health.py`` now checks
the broker every ``broker_check_interval_s``; ``/ready`` answers 503 with ``broker_reachable:
false`` and the error, and the log has one ``broker_unreachable`` error and one
``broker_reachable_again`` when it is back.

Asserted: while the broker is down the worker process stays up, ``/ready`` is 503 and says the
broker is unreachable, the log carries ``broker_unreachable`` naming the broker; after the restart
``/ready`` is 200 again; records processed before the outage are not processed again (their
offsets were kept), records published during the outage (held by the producer until the broker
is back) and after it all come out enriched, each record once (a repeat only under the same event
id), and the supplier index did not have to be rebuilt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from streams.dev import WorkerProcess
from streams.embedded_broker import EmbeddedTansu, free_port
from streams.kafka_io import OutgoingRecord, kafka_producer, publish
from streams.settings import Settings
from tests.conftest import publish_values, read_topic
from tests.integration.test_pipeline import assert_exactly_once, make_stream

pytestmark = pytest.mark.integration

BUCKET = "tansu"
# Longer than the consumer group's session timeout (6 s on Tansu): not only a blip that a single
# retried request would hide.
OUTAGE_S = 8.0


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """An S3 endpoint with an empty bucket for the broker's data, in this process."""
    # moto's web server logs every request at INFO; keep them out of failure reports.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    ).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def broker(s3_endpoint: str, tmp_path: Path) -> Iterator[EmbeddedTansu]:
    """Overrides the session broker: this test's own Tansu, keeping its data in S3."""
    env = {
        "AWS_ENDPOINT": s3_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    tansu = EmbeddedTansu(log_path=tmp_path / "broker.log", storage_engine=f"s3://{BUCKET}/", env=env)
    with tansu:
        yield tansu


def readiness(settings: Settings) -> tuple[int, dict]:
    """``/ready``'s status code and body (a 503 too, which urllib raises)."""
    url = f"http://{settings.web_host}:{settings.web_port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for(condition: callable, timeout_s: float, what: str) -> None:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} within {timeout_s}s")


def log_events(worker: WorkerProcess) -> list[dict]:
    events = []
    for line in worker.log_path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a stray non-JSON line (a traceback's continuation, say)
            continue
    return events


def raw_lag(settings: Settings) -> list[float]:
    """The worker's lag per ``payees.raw`` partition (high-water mark minus committed offset)."""
    url = f"http://{settings.web_host}:{settings.web_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        lines = response.read().decode().splitlines()
    lags = []
    for partition in range(settings.partitions):
        series = f'payee_stream_consumer_lag{{partition="{partition}",topic="{settings.topic_raw}"}} '
        lags.extend(float(line.removeprefix(series)) for line in lines if line.startswith(series))
    return lags


class OutagePublisher(threading.Thread):
    """An upstream producer, connected while the broker is up, that sends while it is down."""

    def __init__(self, settings: Settings, values: list[tuple[bytes, bytes]]) -> None:
        super().__init__(daemon=True)
        self._settings = settings
        self._values = values
        self.connected = threading.Event()
        self.broker_down = threading.Event()
        self.acked: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._publish())
        except BaseException as exc:  # reported by the test thread
            self.error = exc

    async def _publish(self) -> None:
        async with kafka_producer(self._settings) as producer:
            self.connected.set()
            await asyncio.get_running_loop().run_in_executor(None, self.broker_down.wait)
            records = [OutgoingRecord(key=key, value=value) for key, value in self._values]
            self.acked = await publish(producer, self._settings.topic_raw, records)


def test_broker_restart_keeps_data_and_the_worker_recovers(broker, loaded_settings, start_worker):
    settings = loaded_settings.model_copy(update={"broker_check_interval_s": 0.5})
    values, good_keys, _ = make_stream(450, malformed_every=10**9, seed=23)
    before, during, after = values[:150], values[150:300], values[300:]
    before_keys = {key.decode() for key, _ in before}

    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    suppliers = readiness(settings)[1]["suppliers"]
    assert publish_values(settings, before) == len(before)
    assert len(read_topic(settings, settings.topic_enriched, expected=len(before), timeout_s=60, settle_s=0)) >= len(before)
    # Every record before the outage is committed, so none of them may be processed again.
    wait_for(lambda: raw_lag(settings) == [0.0] * settings.partitions, 30, "the first records were not all committed")

    publisher = OutagePublisher(settings, during)
    publisher.start()
    assert publisher.connected.wait(30)
    status, body = readiness(settings)
    assert status == 200 and body["broker_reachable"] is True and body["broker_error"] is None
    assert not any(event.get("event") == "broker_unreachable" for event in log_events(worker))

    # Timed from SIGTERM: Tansu stops answering at once but takes about 5 s to exit.
    stopped_at = time.monotonic()
    broker.stop()
    publisher.broker_down.set()
    wait_for(lambda: readiness(settings)[0] == 503, 20, "/ready did not turn 503 without the broker")
    status, body = readiness(settings)
    assert body["broker_reachable"] is False and body["ready"] is False
    assert body["broker_error"]
    unreachable = [event for event in log_events(worker) if event.get("event") == "broker_unreachable"]
    assert unreachable and unreachable[0]["level"] == "error"
    assert unreachable[0]["bootstrap_servers"] == broker.bootstrap
    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped_at)))
    assert worker.process is not None and worker.process.poll() is None, "the worker died with the broker"
    assert readiness(settings)[0] == 503

    broker.start()
    worker.wait_ready(timeout_s=90)
    assert readiness(settings)[0] == 200
    assert any(event.get("event") == "broker_reachable_again" for event in log_events(worker))
    publisher.join(timeout=60)
    assert publisher.error is None, repr(publisher.error)
    assert publisher.acked == len(during)
    assert publish_values(settings, after) == len(after)

    results = read_topic(settings, settings.topic_enriched, expected=len(good_keys), timeout_s=120)
    assert_exactly_once(results, good_keys)
    # The broker kept the committed offsets: the records done before the outage came out once.
    assert sum(result["record_key"] in before_keys for result in results) == len(before)
    # It kept the suppliers topic too: the index caught up from its snapshot, no rebuild.
    assert readiness(settings)[1]["suppliers"] == suppliers > 0
    assert not any(event.get("event") == "supplier_snapshot_ahead_of_topic" for event in log_events(worker))
    assert worker.process.poll() is None
