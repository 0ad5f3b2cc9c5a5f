"""Personal data: the LLM privacy decision, and failures described without their messages."""

from __future__ import annotations

import json
import sys

import pytest
from pydantic import ValidationError

from domain.matching import SupplierIndex
from domain.pipeline import (
    Enrichment,
    Thresholds,
    build_result,
    enrich,
    privacy_checked,
    route_to_llm,
)
from domain.outcome import result_decisions
from domain.privacy import (
    PERSONAL_NAME_WITHHELD,
    error_location,
    failure_summary,
    llm_disclosure,
    traceback_without_messages,
)
from schemas.events import ClassificationBlock, PayeeRecord, SourcePosition, Versions
from streams.logging import format_exc_info_without_messages

PERSON = "Chukwuemeka Okonkwo"  # the rules read a person, unsure (0.55): it would need the LLM
ORGANISATION = "PARETS FOR PUBLIC SCHOOLS INC"  # a typo: organisation words and a legal form, unsure
THRESHOLDS = Thresholds(review=0.75, llm=0.70)
VERSIONS = Versions(pipeline="test", rules="test", index="test")
SOURCE = SourcePosition(topic="payees.raw", partition=0, offset=1)


def unsure_enrichment(name: str = PERSON) -> Enrichment:
    record = PayeeRecord(source_system="ap", source_record_id="1", payee_name=name)
    enrichment = enrich(record, SupplierIndex(), source=SOURCE)
    assert enrichment.needs_llm(THRESHOLDS)
    return enrichment


def block(entity_type: str, organisation_evidence: bool = False) -> ClassificationBlock:
    return ClassificationBlock(
        entity_type=entity_type, confidence=0.5, method="rules", reason="test", organisation_evidence=organisation_evidence
    )


@pytest.mark.parametrize(
    ("entity_type", "organisation_evidence", "strict", "permissive"),
    [
        ("individual", False, "withheld", "disclosed"),
        ("unknown", False, "withheld", "disclosed"),
        # A business or government guessed from the name's shape or word statistics may be a person.
        ("business", False, "withheld", "disclosed"),
        ("government", False, "withheld", "disclosed"),
        ("business", True, None, None),
        ("government", True, None, None),
    ],
)
def test_llm_disclosure(entity_type, organisation_evidence, strict, permissive):
    assert llm_disclosure(block(entity_type, organisation_evidence), "strict") == strict
    assert llm_disclosure(block(entity_type, organisation_evidence), "permissive") == permissive


# Names the rules call a business, unsure, with no organisation word: guesses that are people
# ("Li Xin": surname first without a comma is not read as a person's name).
GUESSED_BUSINESSES = ["KING, JO ANN and DAVID", "Li Xin"]


@pytest.mark.parametrize("name", GUESSED_BUSINESSES)
def test_strict_privacy_withholds_a_business_the_rules_only_guessed(name: str):
    enrichment = unsure_enrichment(name)
    assert enrichment.classification.entity_type == "business"
    assert not enrichment.classification.organisation_evidence
    enrichment, to_llm = route_to_llm(enrichment, THRESHOLDS, "strict")
    assert not to_llm and enrichment.llm_privacy == "withheld"
    result = build_result(enrichment, VERSIONS, THRESHOLDS, SOURCE)
    assert result.status == "review" and PERSONAL_NAME_WITHHELD in result.review_reasons


@pytest.mark.parametrize("name", ["Xin Li", "Liqing Zhang", "Arvind"])
def test_a_name_read_as_either_goes_to_review_without_the_llm(name: str):
    # A census surname with a given name the census does not list reads as a person, a lone
    # name-shaped word as a brand; both sit between the LLM and review thresholds: a person decides,
    # and the name never reaches the LLM whatever the privacy setting.
    record = PayeeRecord(source_system="ap", source_record_id="1", payee_name=name)
    enrichment = enrich(record, SupplierIndex())
    assert THRESHOLDS.llm <= enrichment.classification.confidence < THRESHOLDS.review
    for privacy in ("strict", "permissive"):
        _, to_llm = route_to_llm(enrichment, THRESHOLDS, privacy)
        assert not to_llm
    assert build_result(enrichment, VERSIONS, THRESHOLDS, SOURCE).status == "review"


def test_a_record_queued_under_permissive_privacy_is_withheld_by_a_strict_llm_step():
    # Queued by a permissive worker (or an older one): the LLM step decides again.
    queued, to_llm = route_to_llm(unsure_enrichment(), THRESHOLDS, "permissive")
    assert to_llm and queued.llm_privacy == "disclosed"
    rechecked = privacy_checked(Enrichment.from_json(queued.to_json()), "strict")
    assert rechecked.llm_privacy == "withheld"
    assert PERSONAL_NAME_WITHHELD in build_result(rechecked, VERSIONS, THRESHOLDS, SOURCE).review_reasons
    assert privacy_checked(Enrichment.from_json(queued.to_json()), "permissive").llm_privacy == "disclosed"


def test_a_record_queued_without_the_evidence_field_counts_as_possibly_personal():
    # An older worker's hand-over has no organisation_evidence: it is not taken as an organisation.
    organisation, _ = route_to_llm(unsure_enrichment(ORGANISATION), THRESHOLDS, "strict")
    data = json.loads(organisation.to_json())
    del data["classification"]["organisation_evidence"]
    older = Enrichment.from_json(json.dumps(data).encode())
    assert privacy_checked(older, "strict").llm_privacy == "withheld"
    assert privacy_checked(Enrichment.from_json(organisation.to_json()), "strict").llm_privacy is None


def test_strict_privacy_keeps_a_person_from_the_llm_and_sends_the_record_to_review():
    enrichment, to_llm = route_to_llm(unsure_enrichment(), THRESHOLDS, "strict")
    assert not to_llm
    result = build_result(enrichment, VERSIONS, THRESHOLDS, SOURCE)
    assert result.status == "review" and PERSONAL_NAME_WITHHELD in result.review_reasons
    assert result.llm_privacy == "withheld"
    actions = {event.action: event for event in result_decisions(result, sent_to_llm=False)}
    assert "sent_to_llm" not in actions
    assert PERSONAL_NAME_WITHHELD in actions["sent_to_review"].outcome["reasons"]


def test_permissive_privacy_sends_and_the_audit_says_so():
    enrichment, to_llm = route_to_llm(unsure_enrichment(), THRESHOLDS, "permissive")
    assert to_llm
    handed_over = Enrichment.from_json(enrichment.to_json())  # through the LLM topic
    assert handed_over.llm_privacy == "disclosed"
    result = build_result(handed_over, VERSIONS, THRESHOLDS, SOURCE)
    assert PERSONAL_NAME_WITHHELD not in result.review_reasons
    [sent] = [event for event in result_decisions(result, sent_to_llm=True) if event.action == "sent_to_llm"]
    assert sent.outcome == {"possibly_personal_name": True, "llm_privacy": "permissive"}


def test_an_organisation_goes_to_the_llm_under_strict_privacy_without_a_note():
    # Organisation words and a legal form, yet unsure: the rules found an organisation, not a person.
    # ("Zorblax", a made-up word, used to be sent here; with no such evidence it may be anyone's name.)
    enrichment, to_llm = route_to_llm(unsure_enrichment(ORGANISATION), THRESHOLDS, "strict")
    assert enrichment.classification.organisation_evidence
    assert to_llm and enrichment.llm_privacy is None
    [sent] = [
        event
        for event in result_decisions(build_result(enrichment, VERSIONS, THRESHOLDS, SOURCE), sent_to_llm=True)
        if event.action == "sent_to_llm"
    ]
    assert sent.outcome == {}


def test_a_confident_record_does_not_need_the_llm():
    record = PayeeRecord(source_system="ap", source_record_id="1", payee_name="ACME TOOLS INC")
    enrichment, to_llm = route_to_llm(enrich(record, SupplierIndex()), THRESHOLDS, "strict")
    assert not to_llm and enrichment.llm_privacy is None


def raise_validation_error() -> None:
    PayeeRecord.model_validate({"source_system": "ap", "source_record_id": "1", "payee_name": PERSON, "amount": PERSON})


def test_failure_summary_says_what_and_where_but_not_the_message():
    for failing in (lambda: {}[PERSON], raise_validation_error):
        try:
            failing()
        except Exception as error:
            assert PERSON in str(error)  # what the old dead letters carried
            summary = failure_summary(error)
            assert PERSON not in summary
            assert summary.startswith(type(error).__name__ + " at ")
            assert "tests/unit/test_privacy.py:" in summary


def test_tracebacks_are_logged_without_messages():
    try:
        try:
            raise_validation_error()
        except ValidationError as inner:
            raise RuntimeError(f"could not read {PERSON}") from inner
    except RuntimeError as error:
        text = traceback_without_messages(error)
        event = format_exc_info_without_messages(None, "error", {"event": "x", "exc_info": sys.exc_info()})
    assert PERSON not in text and PERSON not in json.dumps(event)
    assert "pydantic_core._pydantic_core.ValidationError" in text and "builtins.RuntimeError" in text
    assert "raise_validation_error" in text  # the frames are kept
    assert event["exception"] == text


def test_error_locations_hide_the_senders_metadata_keys():
    assert error_location(("metadata", PERSON, "int")) == "metadata.<key>.int"
    assert error_location(("input", "metadata", PERSON)) == "input.metadata.<key>"
    assert error_location(("address_lines", 2)) == "address_lines.2"
    assert error_location(()) == "<root>"
