"""The core's outcomes as values, without Faust or a broker: which outputs, their ids, their sizes."""

from __future__ import annotations

import base64
import hashlib
import json

from domain.matching import DefaultPlaces, SupplierIndex
from domain.outcome import (
    CoreConfig,
    Outcome,
    hand_off_input,
    llm_result_outcome,
    raw_record_outcome,
    stage_failure_outcome,
)
from domain.pipeline import Rejection, Thresholds, current_versions, match_block, matched
from domain.suppliers import Supplier
from schemas.events import AuditEvent, DeadLetter, EnrichedPayee, PayeeRecord, SourcePosition

CONFIG = CoreConfig(Thresholds(review=0.75, llm=0.7), max_record_bytes=64 * 1024, max_message_bytes=100_000, llm_enabled=False)
SOURCE = SourcePosition(topic="payees.raw", partition=2, offset=41)


def make_index() -> SupplierIndex:
    index = SupplierIndex(match_threshold=0.85, ambiguity_margin=0.05)
    index.upsert(Supplier(supplier_id="S1", name="ACME TOOLS INC", city="AUSTIN", state="TX", category="hardware"))
    index.upsert(Supplier(supplier_id="S2", name="GLOBEX CORPORATION", city="DALLAS", state="TX"))
    return index


def versions_of(index: SupplierIndex):  # type: ignore[no-untyped-def]
    return current_versions(index, "test", CONFIG.thresholds)


def raw(name: str = "ACME TOOLS INC", **fields: object) -> bytes:
    return json.dumps({"source_system": "ap", "source_record_id": "7", "payee_name": name, **fields}).encode()


def outcome_for(value: bytes | None, index: SupplierIndex | None = None, config: CoreConfig = CONFIG, run: str | None = None) -> Outcome:
    return raw_record_outcome(b"ap:7", value, SOURCE, run, index or make_index(), versions_of, config)


def decoded(outcome: Outcome, role: str) -> list[dict]:
    return [json.loads(output.value) for output in outcome.outputs if output.role == role]


def test_a_good_record_is_one_result_and_one_audit_event_listing_every_decision():
    outcome = outcome_for(raw(city="Austin", state="TX"))
    assert [output.role for output in outcome.outputs] in (["enriched", "audit"], ["enriched", "review", "audit"])
    [result] = decoded(outcome, "enriched")
    [audit] = decoded(outcome, "audit")
    assert result["event_id"] == EnrichedPayee.make_event_id(SOURCE, None)
    assert result["order_key"] == SOURCE.offset
    assert audit["event_id"] == AuditEvent.make_event_id(SOURCE, None)
    assert audit["result_event_id"] == result["event_id"] and audit["result_version"] == result["result_version"]
    actions = [decision["action"] for decision in audit["decisions"]]
    assert actions[0] == "received" and "matched" in actions and "classified" in actions and actions[-1] == "emitted"
    headers = dict(outcome.outputs[0].headers)
    assert headers["x-event-id"].decode() == result["event_id"]
    assert headers["x-order-key"] == b"41" and headers["x-result-version"].decode() == result["result_version"]
    assert not outcome.dead_lettered


def test_delivery_ids_do_not_move_with_the_index_but_result_versions_follow_the_outcome():
    index = make_index()
    before = decoded(outcome_for(raw("GLOBEX CORP"), index), "enriched")[0]
    # A supplier upsert between a crash and the redelivery of the same source record.
    index.upsert(Supplier(supplier_id="S9", name="GLOBEX CORP", city="DALLAS", state="TX"))
    after = decoded(outcome_for(raw("GLOBEX CORP"), index), "enriched")[0]
    assert before["versions"]["index"] != after["versions"]["index"]
    assert after["event_id"] == before["event_id"]
    decided = ("match", "classification", "status", "review_reasons")
    assert [after[k] for k in decided] != [before[k] for k in decided]  # the new supplier changed the outcome
    assert after["result_version"] != before["result_version"]
    unchanged = decoded(outcome_for(raw("GLOBEX CORP"), index), "enriched")[0]
    assert unchanged["result_version"] == after["result_version"]


def test_a_repeated_payee_follows_every_change_of_the_index():
    # Matches are cached per payee: a delete and a re-upsert must each show in the next result.
    index = make_index()

    def matched_id() -> str | None:
        return decoded(outcome_for(raw(city="Austin", state="TX"), index), "enriched")[0]["match"]["supplier_id"]

    assert matched_id() == "S1" and matched_id() == "S1"
    index.delete("S1")
    assert matched_id() is None
    index.upsert(Supplier(supplier_id="S1", name="ACME TOOLS INC", city="AUSTIN", state="TX", category="hardware"))
    assert matched_id() == "S1"
    # Changed in place (as many suppliers as before): renamed, the payee is no longer this supplier.
    index.upsert(Supplier(supplier_id="S1", name="ZENITH MOTORS LLC", city="AUSTIN", state="TX", category="hardware"))
    assert matched_id() is None


def test_a_repeated_payee_follows_the_matchers_thresholds():
    # The thresholds are public attributes of the index: a cached match must not outlive them.
    index = make_index()

    def decision() -> str:
        return decoded(outcome_for(raw(city="Austin", state="TX"), index), "enriched")[0]["match"]["decision"]

    assert decision() == "matched"
    index.match_threshold = 1.0
    assert decision() != "matched"


def test_the_match_cache_keeps_apart_what_the_matcher_tells_apart():
    # One name, namesakes in two states: the place, the source's default place and the street decide.
    index = SupplierIndex(match_threshold=0.85, ambiguity_margin=0.05)
    for supplier_id, city, state, postal_code, address in (
        ("AZ1", "PHOENIX", "AZ", "85004", "1 DESERT RD"), ("NY1", "ALBANY", "NY", "12207", "9 HUDSON AVE"),
    ):
        index.upsert(Supplier(
            supplier_id=supplier_id, name="HELPING HANDS FOUNDATION", city=city, state=state,
            postal_code=postal_code, address=address,
        ))
    places = DefaultPlaces.parse("US", {"az": "US-AZ", "ny": "US-NY"})
    records = [
        PayeeRecord(source_system=source, source_record_id="1", payee_name="HELPING HANDS FOUNDATION", **fields)
        for source in ("az", "ny", "other")
        for fields in ({}, {"state": "NY"}, {"city": "Phoenix"}, {"address_lines": ["9 Hudson Ave"]}, {"postal_code": "12207"})
    ]
    seen = set()
    for _ in range(2):  # the second round is served from the cache
        for record in records:
            default_state, default_country = places.for_source(record.source_system)
            direct = index.match(
                record.payee_name, city=record.city, state=record.state, postal_code=record.postal_code,
                country=record.country, default_state=default_state, default_country=default_country,
                address_lines=record.address_lines,
            )
            kept = matched(index, record, default_state, default_country)
            assert kept.block == match_block(direct)
            # Field equality ignores the block's kept JSON, which the result version hashes.
            assert kept.block.json_bytes == match_block(direct).model_dump_json().encode()
            assert (kept.supplier_category, kept.supplier_code) == (direct.supplier_category, direct.supplier_code)
            seen.add((direct.supplier_id, direct.decision))
    assert {("AZ1", "matched"), ("NY1", "matched")} <= seen  # the records do tell the namesakes apart


def test_a_replay_run_is_a_delivery_of_its_own():
    first = decoded(outcome_for(raw()), "enriched")[0]
    replayed = decoded(outcome_for(raw(), run="run-1"), "enriched")[0]
    assert replayed["event_id"] != first["event_id"]
    assert replayed["result_version"] == first["result_version"]


def test_bad_input_is_a_dead_letter_with_its_audit_event():
    outcome = outcome_for(b"{not json")
    assert outcome.dead_lettered
    assert [output.role for output in outcome.outputs] == ["dlq", "audit"]
    [letter] = decoded(outcome, "dlq")
    assert base64.b64decode(letter["original_value_b64"]) == b"{not json"
    assert letter["original_sha256"] == hashlib.sha256(b"{not json").hexdigest()
    assert letter["event_id"] == DeadLetter.make_event_id(SOURCE, None) and not letter["original_truncated"]
    [audit] = decoded(outcome, "audit")
    assert [d["action"] for d in audit["decisions"]] == ["rejected"]
    assert audit["dead_letter_event_id"] == letter["event_id"]


def test_huge_inputs_become_dead_letters_that_fit_the_message_size():
    for size in (1_000_000, 5_000_000):
        value = b'{"payee_name": "' + b"A" * size + b'"}'
        outcome = outcome_for(value)
        assert outcome.dead_lettered
        assert all(output.size <= CONFIG.max_message_bytes for output in outcome.outputs)
        [letter] = decoded(outcome, "dlq")
        assert letter["original_size"] == len(value) and letter["original_truncated"]
        assert letter["original_sha256"] == hashlib.sha256(value).hexdigest()
        prefix = base64.b64decode(letter["original_value_b64"])
        assert value.startswith(prefix) and len(prefix) > CONFIG.max_message_bytes // 2


def test_a_result_over_the_message_size_is_a_dead_letter_not_a_failed_send():
    small = CoreConfig(CONFIG.thresholds, max_record_bytes=64 * 1024, max_message_bytes=16 * 1024, llm_enabled=False)
    value = raw(address_lines=["x" * 200] * 5, metadata={f"k{i}": "v" * 400 for i in range(40)})
    outcome = outcome_for(value, config=small)
    assert outcome.dead_lettered and decoded(outcome, "dlq")[0]["error_type"] == "output_too_large"
    assert all(output.size <= small.max_message_bytes for output in outcome.outputs)


def test_unsure_records_are_handed_to_the_llm_stage_and_its_result_keeps_the_source_ids():
    with_llm = CoreConfig(Thresholds(review=0.75, llm=1.01), 64 * 1024, 100_000, llm_enabled=True)
    outcome = outcome_for(raw("GLOBEX TRADING LLC"), config=with_llm)
    [hand_over] = outcome.outputs
    assert hand_over.role == "llm" and outcome.handed_to_llm
    enrichment = hand_off_input(hand_over.value, "llm")
    assert not isinstance(enrichment, Rejection)
    from domain.classify import Classification

    classification = Classification(entity_type="individual", subtype=None, sic_code=None, sic_description=None,
                                     confidence=0.95, method="llm", reason="llm says so")
    result_outcome = llm_result_outcome(enrichment, classification, 12.0, versions_of(make_index()), with_llm)
    [result] = decoded(result_outcome, "enriched")
    assert result["event_id"] == EnrichedPayee.make_event_id(SOURCE, None) and result["order_key"] == SOURCE.offset
    [audit] = decoded(result_outcome, "audit")
    assert "sent_to_llm" in [d["action"] for d in audit["decisions"]]


def test_llm_stage_dead_letters_keep_the_raw_record_for_replay():
    with_llm = CoreConfig(Thresholds(review=0.75, llm=1.01), 64 * 1024, 100_000, llm_enabled=True)
    [hand_over] = outcome_for(raw("GLOBEX TRADING LLC"), config=with_llm).outputs
    enrichment = hand_off_input(hand_over.value, "llm")
    assert not isinstance(enrichment, Rejection)
    at_llm = SourcePosition(topic="payees.llm", partition=0, offset=3)
    outcome = stage_failure_outcome(Rejection("llm", "Boom", "x"), b"ap:7", hand_over.value, at_llm, enrichment,
                                  versions_of(make_index()), with_llm)
    [letter] = decoded(outcome, "dlq")
    original = PayeeRecord.model_validate_json(base64.b64decode(letter["original_value_b64"]))
    assert original.payee_name == "GLOBEX TRADING LLC"
    assert (letter["source_topic"], letter["order_key"]) == ("payees.llm", SOURCE.offset)
    assert letter["event_id"] == DeadLetter.make_event_id(SOURCE, None)


def test_strict_privacy_keeps_a_possibly_personal_name_from_the_llm_hand_off():
    with_llm = CoreConfig(Thresholds(review=0.75, llm=1.01), 64 * 1024, 100_000, llm_enabled=True)
    outcome = outcome_for(raw("J SMITH"), config=with_llm)
    assert not outcome.handed_to_llm and "llm" not in {output.role for output in outcome.outputs}
    [result] = decoded(outcome, "enriched")
    assert result["llm_privacy"] == "withheld" and result["status"] == "review"
    permissive = CoreConfig(with_llm.thresholds, 64 * 1024, 100_000, llm_enabled=True, llm_privacy="permissive")
    assert outcome_for(raw("J SMITH"), config=permissive).handed_to_llm


def test_confident_businesses_go_to_the_merchant_stage_after_the_rules_or_the_llm():
    from domain.classify import Classification
    from domain.merchant import MerchantPolicy

    merchant = CoreConfig(CONFIG.thresholds, 64 * 1024, 100_000, llm_enabled=False, merchant_policy=MerchantPolicy(0.8))
    [hand_over] = outcome_for(raw("ACME TOOLS INC"), config=merchant).outputs
    assert hand_over.role == "merchant" and hand_over.key == b"ap:7"
    assert hand_off_input(hand_over.value, "merchant").source == SOURCE
    # Without a merchant stage, or for a person, the fast path gives the result itself.
    assert decoded(outcome_for(raw("ACME TOOLS INC")), "enriched")
    assert {o.role for o in outcome_for(raw("John Smith"), config=merchant).outputs} >= {"enriched", "audit"}
    # After the LLM: a business it is sure of is handed on too.
    with_both = CoreConfig(Thresholds(review=0.75, llm=1.01), 64 * 1024, 100_000, llm_enabled=True,
                           merchant_policy=MerchantPolicy(0.8))
    [to_llm] = outcome_for(raw("GLOBEX TRADING LLC"), config=with_both).outputs
    enrichment = hand_off_input(to_llm.value, "llm")
    assert not isinstance(enrichment, Rejection)
    business = Classification(entity_type="business", subtype=None, sic_code=None, sic_description=None,
                              confidence=0.95, method="llm", reason="llm says so")
    [after_llm] = llm_result_outcome(enrichment, business, 5.0, versions_of(make_index()), with_both).outputs
    assert after_llm.role == "merchant"
