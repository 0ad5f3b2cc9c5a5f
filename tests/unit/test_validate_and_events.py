"""Validate step and event identity, without Faust or a broker."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from domain.outcome import dead_letter
from domain.pipeline import Rejection, decode_record
from schemas.events import EVENT_ID_NAMESPACE, AuditEvent, EnrichedPayee, PayeeRecord, SourcePosition, deterministic_id

MAX_BYTES = 64 * 1024


def raw(**fields: object) -> bytes:
    record = {"source_system": "ap", "source_record_id": "42", "payee_name": "ACME TOOLS INC"}
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not ...}).encode()


def test_a_good_record_decodes():
    record = decode_record(raw(amount="12.50", currency="USD", city="Austin"), MAX_BYTES)
    assert isinstance(record, PayeeRecord)
    assert record.record_key == "ap:42"
    assert str(record.amount) == "12.50"


@pytest.mark.parametrize(
    ("value", "error_type"),
    [
        (None, "empty_message"),
        (b"{not json", "malformed_json"),
        (b"\xff\xfe garbage", "malformed_json"),
        (b"[1, 2]", "not_an_object"),
        (raw(payee_name=""), "schema_violation"),
        (raw(payee_name="   "), "schema_violation"),
        (raw(payee_name="A" * 301), "schema_violation"),
        (raw(payee_name="--- ..."), "schema_violation"),
        (raw(payee_name="ACME\x00INC"), "schema_violation"),
        (raw(payee_name=...), "schema_violation"),
        (raw(amount="lots"), "schema_violation"),
        (raw(currency="dollars"), "schema_violation"),
        (raw(payment_date="yesterday"), "schema_violation"),
        (raw(source_system=7), "schema_violation"),
        (b'{"x": "' + b"y" * MAX_BYTES + b'"}', "oversized"),
    ],
)
def test_bad_records_are_rejections_not_exceptions(value, error_type):
    result = decode_record(value, MAX_BYTES)
    assert isinstance(result, Rejection)
    assert result.error_type == error_type
    assert result.stage == "validate"


def test_rejection_message_names_the_field():
    result = decode_record(raw(amount="lots"), MAX_BYTES)
    assert isinstance(result, Rejection) and "amount" in result.message


def test_fingerprint_ignores_field_order_and_whitespace():
    first = decode_record(b'{"source_system":"ap","source_record_id":"1","payee_name":"ACME INC"}', MAX_BYTES)
    second = decode_record(b'{"payee_name":"  ACME INC ","source_record_id":"1","source_system":"ap"}', MAX_BYTES)
    assert isinstance(first, PayeeRecord) and isinstance(second, PayeeRecord)
    assert first.fingerprint() == second.fingerprint()


def test_event_id_is_the_source_position_and_run():
    here = SourcePosition(topic="payees.raw", partition=1, offset=7)
    assert EnrichedPayee.make_event_id(here, None) == EnrichedPayee.make_event_id(here, None)
    assert EnrichedPayee.make_event_id(here, None) != EnrichedPayee.make_event_id(here, "run-1")
    assert EnrichedPayee.make_event_id(here, None) != EnrichedPayee.make_event_id(here.model_copy(update={"offset": 8}), None)


@pytest.mark.parametrize("parts", [("delivery", "enriched", "payees.raw", "3", "12345", ""), ("correlation", "crm:é中", ""), ("x",)])
def test_ids_are_the_uuid5_of_their_parts(parts):
    # Ids already published must stay the same: the fast path is RFC 4122 name-based (SHA-1) ids.
    assert deterministic_id(*parts) == str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts)))


def test_published_ids_do_not_move():
    # Values of the release before the fast path: the namespace and the parts' order are pinned too.
    here = SourcePosition(topic="payees.raw", partition=2, offset=41)
    assert EnrichedPayee.make_event_id(here, None) == "e7144636-6829-53df-8697-a90c5684783e"
    assert AuditEvent.make_event_id(here, "run-1") == "1e1f03ad-c2ee-510c-b5d2-75c2899e8509"
    assert deterministic_id("correlation", "crm:7", "ab") == "63537033-8be7-5fca-9472-89c472ee0414"


def test_dead_letter_keeps_original_bytes_and_position():
    original = b"{not json"
    source = SourcePosition(topic="payees.raw", partition=3, offset=17)
    letter = dead_letter(Rejection("validate", "malformed_json", "bad"), b"k", original, source)
    assert base64.b64decode(letter.original_value_b64) == original
    assert base64.b64decode(letter.original_key_b64 or "") == b"k"
    assert (letter.source_partition, letter.source_offset, letter.stage) == (3, 17, "validate")
    again = dead_letter(Rejection("validate", "malformed_json", "bad"), b"k", original, source)
    assert again.event_id == letter.event_id
