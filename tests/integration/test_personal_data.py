"""Individuals' names stay where they belong: in results and review copies, not in logs, dead-letter
error texts, metrics or audit events, and not at an external LLM unless the privacy setting says so.

A worker with an LLM endpoint (a local fake) processes individuals' names: good records (some
confident, some that the rules are unsure about and would hand to the LLM), records that fail
validation with the name echoed in every way pydantic can echo input, and hand-overs to the LLM
step that crash it (a ValidationError whose text quotes the name). Then every log line, every
dead-letter error field, every audit event and /metrics are searched for every name.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from collections.abc import Iterator

import pytest

from domain.classify import classify_payee
from domain.matching import SupplierIndex
from domain.pipeline import Thresholds, enrich, route_to_llm
from domain.privacy import PERSONAL_NAME_WITHHELD
from schemas.events import PayeeRecord, SourcePosition
from streams.kafka_io import OutgoingRecord, kafka_producer, publish
from tests.conftest import publish_values, read_topic
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

LLM_THRESHOLDS = Thresholds(review=0.75, llm=0.70)

CONFIDENT_PEOPLE = ["Wojciech Przybylski", "Bartholomew Quigglesworth", "Tjorven Haugland"]
UNSURE_PEOPLE = ["Chukwuemeka Okonkwo", "Adaeze Nwachukwu", "Thandiwe Mthembu", "Keoni Kahananui"]
# People the rules guess, unsure, to be businesses (no organisation word): possibly personal too
# ("Li Xin": surname first without a comma is not read as a person's name).
GUESSED_BUSINESS_PEOPLE = ["KING, JO ANN and DAVID", "Li Xin"]
# Read as a person (a census surname and a given name the census does not list) or as a brand
# (a lone name-shaped word), between the LLM and review thresholds: to review, never to the LLM.
READ_AS_EITHER_PEOPLE = ["Liqing Zhang", "Arvind", "Xin Li"]
# Handed to the LLM step by a worker under permissive privacy; this worker is strict.
QUEUED_PERSON = "Chidinma Okafor"
INVALID_PEOPLE = ["Zbigniew Brzeczyszczykiewicz", "Priyanka Raghunathan", "Oluwaseun Adebayo"]
CRASHING_PEOPLE = ["Radomir Szczepankiewicz", "Ngozi Eze"]


def record(record_id: str, name: str, **fields: object) -> tuple[bytes, bytes]:
    value = {"source_system": "ap", "source_record_id": record_id, "payee_name": name, **fields}
    return f"ap:{record_id}".encode(), json.dumps(value).encode()


def invalid_records() -> list[tuple[bytes, bytes]]:
    """Each fails validation with the name also in the offending value."""
    first, second, third = INVALID_PEOPLE
    return [
        record("i1", first, amount=first),
        record("i2", first, currency=first, payment_date=first),
        record("i3", second, address_lines=[second * 20]),
        record("i4", second + "\x01"),  # control character
        record("i5", (third + " ") * 40),  # too long
        record("i6", third, metadata={third: [third]}),
        record("i7", third, source_system=third * 10),
    ]


def crashing_handovers() -> list[OutgoingRecord]:
    """Hand-overs to the LLM step that it cannot read: its ValidationError text quotes the name."""
    first, second = CRASHING_PEOPLE
    return [
        OutgoingRecord(key=b"ap:c1", value=json.dumps({"record": {"payee_name": first, "amount": first}}).encode()),
        OutgoingRecord(key=b"ap:c2", value=json.dumps({"record": {"payee_name": second, "source_system": [second]}}).encode()),
        OutgoingRecord(key=b"ap:c3", value=json.dumps({"record": {"payee_name": first, "source_system": "ap", "source_record_id": "c3"}}).encode()),
    ]


def queued_handover() -> OutgoingRecord:
    record = PayeeRecord(source_system="ap", source_record_id="q1", payee_name=QUEUED_PERSON)
    # Where the permissive worker read it (every hand-off carries its source position).
    source = SourcePosition(topic="payees.raw", partition=0, offset=1_000)
    enrichment, to_llm = route_to_llm(enrich(record, SupplierIndex(), source=source), LLM_THRESHOLDS, "permissive")
    assert to_llm and enrichment.llm_privacy == "disclosed"
    return OutgoingRecord(key=record.record_key.encode(), value=enrichment.to_json())


def name_parts() -> set[str]:
    """Every word of every name, in the forms a leak would take; whole names for those whose words
    are common in other text ("and", "king")."""
    words = {name.lower() for name in GUESSED_BUSINESS_PEOPLE + READ_AS_EITHER_PEOPLE}
    for name in CONFIDENT_PEOPLE + UNSURE_PEOPLE + INVALID_PEOPLE + CRASHING_PEOPLE + [QUEUED_PERSON]:
        words.update(word.lower() for word in name.split() if len(word) >= 3)
    words.update(("liqing", "zhang", "arvind"))
    return words


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return sorted(word for word in name_parts() if word in lowered)


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    server.reply = {"entity_type": "individual", "subtype": None, "sic_code": None, "confidence": 0.9, "reason": "a person"}
    yield server
    server.stop()


def test_names_of_individuals_do_not_leak(loaded_settings, start_worker, fake_llm):
    settings = loaded_settings.model_copy(update={"llm_base_url": fake_llm.base_url, "log_level": "INFO"})
    assert settings.llm_privacy == "strict"  # the default
    assert all(classify_payee(name).confidence < settings.llm_threshold for name in UNSURE_PEOPLE + GUESSED_BUSINESS_PEOPLE)
    assert all(classify_payee(name).entity_type == "business" for name in GUESSED_BUSINESS_PEOPLE)
    assert all(classify_payee(name).confidence >= settings.llm_threshold for name in CONFIDENT_PEOPLE)
    assert all(
        settings.llm_threshold <= classify_payee(name).confidence < settings.review_threshold
        for name in READ_AS_EITHER_PEOPLE
    )
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)

    good = [
        record(f"g{i}", name)
        for i, name in enumerate(CONFIDENT_PEOPLE + UNSURE_PEOPLE + GUESSED_BUSINESS_PEOPLE + READ_AS_EITHER_PEOPLE)
    ]
    invalid = invalid_records()
    publish_values(settings, good + invalid)

    async def hand_over() -> None:
        async with kafka_producer(settings) as producer:
            await publish(producer, settings.topic_llm, [*crashing_handovers(), queued_handover()])

    asyncio.run(hand_over())

    results = read_topic(settings, settings.topic_enriched, expected=len(good) + 1, timeout_s=60)
    letters = read_topic(settings, settings.topic_dlq, expected=len(invalid) + 3, timeout_s=60)
    audit = read_topic(settings, settings.topic_audit, expected=1, timeout_s=10)
    with urllib.request.urlopen(f"http://{settings.web_host}:{settings.web_port}/metrics", timeout=5) as response:
        metrics_text = response.read().decode()
    worker.stop()
    log_text = worker.log_path.read_text(encoding="utf-8", errors="replace")

    # Everything arrived, and the unsure individuals went to review instead of to the LLM, the one
    # queued under permissive privacy too (the LLM step decides again).
    assert len(results) == len(good) + 1
    assert len(letters) == len(invalid) + 3
    assert {letter["stage"] for letter in letters} == {"validate", "llm"}
    withheld = {r["input"]["payee_name"] for r in results if PERSONAL_NAME_WITHHELD in r["review_reasons"]}
    assert withheld == {*UNSURE_PEOPLE, *GUESSED_BUSINESS_PEOPLE, QUEUED_PERSON}
    assert all(r["status"] == "review" and r["llm_privacy"] == "withheld" for r in results if r["input"]["payee_name"] in withheld)
    assert all(r["status"] == "review" for r in results if r["input"]["payee_name"] in READ_AS_EITHER_PEOPLE)
    assert fake_llm.requests == 0
    # The records that failed are kept whole for replay (base64), so nothing is lost.
    kept = b"".join(base64.b64decode(letter["original_value_b64"]) for letter in letters).decode(errors="replace")
    assert leaks(kept)

    # No name anywhere it should not be.
    assert "llm_stage_failed" in log_text and "ValidationError" in log_text  # the crash was logged
    assert leaks(log_text) == []
    for letter in letters:
        assert leaks(json.dumps({k: v for k, v in letter.items() if k != "original_value_b64"})) == []
    assert leaks(json.dumps(audit)) == []
    assert leaks(metrics_text) == []


def test_permissive_privacy_sends_the_name_and_says_so(loaded_settings, start_worker, fake_llm):
    settings = loaded_settings.model_copy(update={"llm_base_url": fake_llm.base_url, "llm_privacy": "permissive"})
    worker = start_worker(settings)
    worker.wait_ready(timeout_s=90)
    publish_values(settings, [record("p1", UNSURE_PEOPLE[0])])
    [result] = read_topic(settings, settings.topic_enriched, expected=1, timeout_s=60, settle_s=0.5)
    assert result["llm_privacy"] == "disclosed"
    assert result["classification"]["method"] == "llm"
    assert PERSONAL_NAME_WITHHELD not in result["review_reasons"]
    assert UNSURE_PEOPLE[0] in json.dumps(fake_llm.request_bodies)
    audit = read_topic(settings, settings.topic_audit, expected=1, timeout_s=10)
    [sent] = [decision for event in audit for decision in event["decisions"] if decision["action"] == "sent_to_llm"]
    assert sent["outcome"] == {"possibly_personal_name": True, "llm_privacy": "permissive"}
