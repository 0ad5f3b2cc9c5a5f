"""Delivery under faults, on the real broker: huge inputs, a delivery the broker refuses, a worker
killed between publish and acknowledgement, a supplier upsert between a crash and the
redelivery, a rebalance while the poison-flood guard has the partitions paused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from domain.classify import classify_payee
from streams.embedded_broker import free_port
from streams.kafka_security import kafka_client_options
from streams.settings import Settings
from streams.supplier_loading import load_supplier_file
from tests.conftest import publish_values, read_topic
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration


def record(record_id: str, name: str) -> tuple[bytes, bytes]:
    value = {"source_system": "ap", "source_record_id": record_id, "payee_name": name}
    return f"ap:{record_id}".encode(), json.dumps(value).encode()


def ready_body(settings: Settings) -> dict | None:
    """/ready's body whatever its status (503 while not ready)."""
    url = f"http://{settings.web_host}:{settings.web_port}/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())
    except OSError:
        return None


def metric(settings: Settings, name: str) -> float:
    with urllib.request.urlopen(f"http://{settings.web_host}:{settings.web_port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def wait_for(condition, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def committed_offsets(settings: Settings, topic: str) -> dict[int, int | None]:
    async def run() -> dict[int, int | None]:
        consumer = AIOKafkaConsumer(**kafka_client_options(settings), group_id=settings.app_id, enable_auto_commit=False)
        await consumer.start()
        try:
            return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(settings.partitions)}
        finally:
            await consumer.stop()

    return asyncio.run(run())


def raw_positions(settings: Settings) -> dict[str, tuple[int, int]]:
    """record key → (partition, offset) on payees.raw."""
    async def run() -> dict[str, tuple[int, int]]:
        consumer = AIOKafkaConsumer(
            **kafka_client_options(settings), enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic_raw, p) for p in range(settings.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            positions: dict[str, tuple[int, int]] = {}
            idle = 0
            while idle < 3:
                batch = await consumer.getmany(timeout_ms=500)
                idle = 0 if batch else idle + 1
                for records in batch.values():
                    positions.update((r.key.decode(), (r.partition, r.offset)) for r in records)
            return positions
        finally:
            await consumer.stop()

    return asyncio.run(run())


def test_one_and_five_megabyte_inputs_are_dead_lettered_and_what_follows_is_processed(loaded_settings, start_worker):
    settings = loaded_settings
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    huge = {size: json.dumps({"source_system": "ap", "source_record_id": f"huge{size}", "payee_name": "A" * size}).encode()
            for size in (1_000_000, 5_000_000)}
    # All on one key, so on one partition: the records after each huge one must come through.
    same_key = b"ap:same"
    values = [(same_key, record("before", "ACME TOOLS INC")[1]), (same_key, huge[1_000_000]),
              (same_key, record("between", "GLOBEX CORPORATION")[1]), (same_key, huge[5_000_000]),
              (same_key, record("after", "John Smith")[1])]

    async def publish() -> None:
        producer = AIOKafkaProducer(**kafka_client_options(settings), max_request_size=8 * 1024 * 1024)
        await producer.start()
        try:
            for key, value in values:
                await (await producer.send(settings.topic_raw, value, key=key))
        finally:
            await producer.stop()

    asyncio.run(publish())
    results = read_topic(settings, settings.topic_enriched, expected=3, timeout_s=90, settle_s=1)
    # Results have keys of their own (other partitions): in source order by their order key.
    in_order = sorted(results, key=lambda r: r["order_key"])
    assert [r["input"]["source_record_id"] for r in in_order] == ["before", "between", "after"]
    assert [r["order_key"] for r in in_order] == [0, 2, 4]
    letters = read_topic(settings, settings.topic_dlq, expected=2, timeout_s=30, settle_s=1)
    assert len(letters) == 2
    for letter, original in zip(letters, (huge[1_000_000], huge[5_000_000]), strict=True):
        assert letter["error_type"] == "oversized" and letter["original_truncated"] is True
        assert letter["original_size"] == len(original)
        assert letter["original_sha256"] == hashlib.sha256(original).hexdigest()
        assert original.startswith(base64.b64decode(letter["original_value_b64"]))
    status = ready_body(settings)
    assert status is not None and status["ready"], status
    assert worker.process is not None and worker.process.poll() is None


# Names the rules are unsure of (below the LLM and review thresholds).
UNSURE_NAMES = ["Zorblax Quintar", "Ocio Klm", "Kjzz Kbaq", "LOVE", "Blue Heron"]
UNSURE = UNSURE_NAMES[0]


def test_a_delivery_the_broker_refuses_stops_the_partition_and_everything_arrives_once_fixed(loaded_settings, start_worker):
    """The review topic is misnamed (a name the broker refuses, 300 characters: Kafka and Tansu
    allow 249). Tansu accepts every message size and creates missing topics on demand, so this
    is the refusal it really produces: UnknownTopicOrPartition on every send to that topic."""
    assert classify_payee(UNSURE).confidence < loaded_settings.review_threshold
    broken = loaded_settings.model_copy(update={
        "topic_review": "r" * 300, "delivery_stall_after_s": 2.0, "delivery_retry_max_s": 0.5, "commit_interval_s": 0.2,
    })
    worker = start_worker(broken, "broken")
    worker.wait_ready(timeout_s=90)
    confident = [record(f"c{i}", "ACME TOOLS INC") for i in range(40)]
    unsure = [record(f"u{i}", UNSURE) for i in range(4)]
    publish_values(broken, confident[:20] + unsure + confident[20:])

    positions = raw_positions(broken)
    first_unsure: dict[int, int] = {}
    for key, _ in unsure:
        partition, offset = positions[key.decode()]
        first_unsure[partition] = min(offset, first_unsure.get(partition, offset))

    def stalled_on_unsure() -> dict | None:
        # A first send on a fresh Tansu topic can fail for a moment (NotLeaderForPartition) and
        # recover; wait for the stall that does not: exactly the partitions with review copies.
        status = ready_body(broken)
        if status and {int(name.rsplit(":", 1)[1]) for name in status["delivery_stalled"]} == set(first_unsure):
            return status
        return None

    status = wait_for(stalled_on_unsure, 60, "the partitions with review copies to stall")
    assert status["ready"] is False and "delivery stalled" in status["not_ready_because"]
    assert all(status["delivery_stalled"].values())  # the producer's error, e.g. UnknownTopicOrPartitionError
    assert metric(broken, "payee_stream_delivery_stalled_partitions") == len(first_unsure)
    time.sleep(2)  # several commit intervals while stalled

    # Nothing committed past the first record each stalled partition could not deliver.
    committed = committed_offsets(broken, broken.topic_raw)
    for partition, offset in first_unsure.items():
        assert committed[partition] is None or committed[partition] <= offset, (partition, committed, first_unsure)

    # The cause removed (the right topic name): everything arrives, duplicates only under one id.
    worker.stop()
    fixed = start_worker(loaded_settings.model_copy(update={"commit_interval_s": 0.2}), "fixed")
    fixed.wait_ready(timeout_s=90)
    results = read_topic(loaded_settings, loaded_settings.topic_enriched, expected=44, timeout_s=90, settle_s=2)
    by_key: dict[str, set[str]] = defaultdict(set)
    for result in results:
        by_key[result["record_key"]].add(result["event_id"])
    assert set(by_key) == {key.decode() for key, _ in confident + unsure}
    assert all(len(ids) == 1 for ids in by_key.values())
    reviews = read_topic(loaded_settings, loaded_settings.topic_review, expected=4, timeout_s=30, settle_s=1)
    assert {r["record_key"] for r in reviews} == {key.decode() for key, _ in unsure}


@pytest.fixture
def fake_llm():  # type: ignore[no-untyped-def]
    server = FakeOpenAI().start()
    yield server
    server.stop()


def test_llm_stage_killed_between_publish_and_acknowledgement_loses_nothing(loaded_settings, start_worker, fake_llm):
    # Commits far apart: the LLM stage's results are out, its input offsets not yet committed.
    # Permissive privacy: every unsure name goes to the LLM stage, whose delivery is the subject.
    settings = loaded_settings.model_copy(update={
        "llm_base_url": fake_llm.base_url, "commit_interval_s": 3600.0, "llm_cache_size": 0, "llm_privacy": "permissive",
    })
    assert all(classify_payee(name).confidence < settings.llm_threshold for name in UNSURE_NAMES)
    worker = start_worker(settings, "first")
    worker.wait_ready(timeout_s=90)
    unsure = [record(f"u{i}", name) for i, name in enumerate(UNSURE_NAMES * 4)]
    publish_values(settings, unsure)
    first = read_topic(settings, settings.topic_enriched, expected=len(unsure), timeout_s=90, settle_s=1)
    assert {r["classification"]["method"] for r in first} == {"llm"}
    worker.stop(signal.SIGKILL)
    assert committed_offsets(settings, settings.topic_llm) == dict.fromkeys(range(settings.partitions))

    restarted = start_worker(settings.model_copy(update={"commit_interval_s": 0.2}), "second")
    restarted.wait_ready(timeout_s=90)
    results = read_topic(settings, settings.topic_enriched, expected=2 * len(unsure), timeout_s=90, settle_s=2)
    by_key: dict[str, set[str]] = defaultdict(set)
    for result in results:
        by_key[result["record_key"]].add(result["event_id"])
    assert set(by_key) == {key.decode() for key, _ in unsure}
    # Redone (the raw records too: their offsets were not committed either), under the same ids.
    assert all(len(ids) == 1 for ids in by_key.values())


def test_a_supplier_upsert_between_a_crash_and_the_redelivery_keeps_the_delivery_ids(loaded_settings, start_worker, tmp_path: Path):
    settings = loaded_settings.model_copy(update={"commit_interval_s": 3600.0})
    worker = start_worker(settings, "first")
    worker.wait_ready(timeout_s=90)
    names = ["Quixotic Widgets Corp", "ACME TOOLS INC", "John Smith", "Quixotic Widgets"]
    values = [record(f"r{i}", names[i % len(names)]) for i in range(20)]
    publish_values(settings, values)
    before = read_topic(settings, settings.topic_enriched, expected=20, timeout_s=90, settle_s=1)
    worker.stop(signal.SIGKILL)

    # A supplier the payees name is added before the redelivery.
    suppliers = tmp_path / "new_supplier.csv"
    suppliers.write_text(
        "supplier_id,name,alt_name,address,city,state,postal_code,country,category,code\n"
        "QX1,QUIXOTIC WIDGETS CORP,,1 MAIN ST,AUSTIN,TX,73301,US,manufacturing,\n"
    )
    asyncio.run(load_supplier_file(settings, suppliers, None))
    restarted = start_worker(settings.model_copy(update={"commit_interval_s": 0.2}), "second")
    restarted.wait_ready(timeout_s=90)
    everything = read_topic(settings, settings.topic_enriched, expected=40, timeout_s=90, settle_s=2)
    first_ids = {r["record_key"]: r for r in before}
    by_key: dict[str, list[dict]] = defaultdict(list)
    for result in everything:
        by_key[result["record_key"]].append(result)
    assert all(len(results) == 2 for results in by_key.values())
    after = [max(results, key=lambda r: r["processed_at"]) for results in by_key.values()]
    for result in after:
        original = first_ids[result["record_key"]]
        assert result["event_id"] == original["event_id"]
        assert result["versions"]["index"] != original["versions"]["index"]
    changed = [r for r in after if r["result_version"] != first_ids[r["record_key"]]["result_version"]]
    assert any(r["input"]["payee_name"].startswith("Quixotic") for r in changed)
    assert {r["match"]["supplier_id"] for r in changed if r["match"]["decision"] == "matched"} <= {"QX1"}
    # The others keep their decisions; their match evidence may differ a little (the index's word
    # statistics moved with the new supplier), and their result version says so.
    for result in after:
        if not result["input"]["payee_name"].startswith("Quixotic"):
            original = first_ids[result["record_key"]]
            assert decided(result) == decided(original)


def decided(result: dict) -> tuple:
    match, classification = result["match"], result["classification"]
    return match["decision"], match["supplier_id"], classification["entity_type"], result["status"]


def test_a_rebalance_while_the_guard_has_the_partitions_paused_completes(loaded_settings, start_worker):
    settings = loaded_settings.model_copy(update={"dlq_guard_window": 100, "dlq_guard_min_records": 50})
    first = start_worker(settings, "first")
    first.wait_ready(timeout_s=90)
    publish_values(settings, [(f"ap:{i}".encode(), b"{poison") for i in range(2_000)])
    wait_for(lambda: (s := ready_body(settings)) and s["dead_letter_guard_tripped"], 60, "the guard to trip")
    paused = ready_body(settings)
    assert paused and paused["paused_partitions"] and paused["assigned_partitions"] == settings.partitions

    # A second worker joins the group while the first one's partitions are paused.
    second_settings = settings.model_copy(update={"web_port": free_port(), "data_dir": settings.data_dir.parent / "second"})
    second = start_worker(second_settings, "second")
    wait_for(lambda: (s := ready_body(second_settings)) and s["supplier_index_ready"], 180, "the second index")
    joined_at = time.monotonic()
    from streams.tansu_compat import TANSU_SESSION_TIMEOUT_S

    def split() -> bool:
        a, b = ready_body(settings), ready_body(second_settings)
        return bool(a and b and a["assigned_partitions"] and b["assigned_partitions"]
                    and not a["rebalancing"] and not b["rebalancing"]
                    and a["assigned_partitions"] + b["assigned_partitions"] == settings.partitions)

    wait_for(split, TANSU_SESSION_TIMEOUT_S * 3, "the rebalance to complete")
    assert time.monotonic() - joined_at <= TANSU_SESSION_TIMEOUT_S * 3
    # The first worker still holds what it kept paused: no record was processed past the guard.
    assert ready_body(settings)["dead_letter_guard_tripped"]
    assert first.process is not None and first.process.poll() is None
