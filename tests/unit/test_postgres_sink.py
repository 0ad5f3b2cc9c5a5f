"""The PostgreSQL sink's pure parts: decoding records into rows, backoff, the audit table."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from schemas.events import (
    AuditDecision,
    AuditEvent,
    ClassificationBlock,
    EnrichedPayee,
    MatchBlock,
    PayeeRecord,
    SourcePosition,
    Versions,
)
from streams.db_cli import format_audit_table
from streams.postgres_sink import backoff_delay, rows_from_events
from streams.review.sink_rows import supplier_row

AUDIT_TOPIC = "t.payees.audit"
ENRICHED_TOPIC = "t.payees.enriched"
VERSIONS = Versions(pipeline="1", rules="r1", index="i1")
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FakeRecord:
    topic: str
    partition: int
    offset: int
    value: bytes | None


def make_result(
    record_id: int,
    order_key: int = 0,
    processed_at: datetime = START,
    result_version: str = "v1",
    name: str = "ACME TOOLS INC",
) -> EnrichedPayee:
    """A result for record ``ap:{record_id}`` read at offset ``order_key`` of payees.raw."""
    payee = PayeeRecord(source_system="ap", source_record_id=str(record_id), payee_name=name)
    source = SourcePosition(topic="payees.raw", partition=0, offset=order_key)
    return EnrichedPayee(
        event_id=EnrichedPayee.make_event_id(source, f"record-{record_id}"),
        result_version=result_version,
        order_key=order_key,
        correlation_id=str(uuid.uuid5(uuid.NAMESPACE_OID, payee.record_key)),
        record_key=payee.record_key,
        record_fingerprint=payee.fingerprint(),
        input=payee,
        normalized_name=name.lower(),
        match=MatchBlock(
            supplier_id="S1",
            supplier_name=name,
            score=0.97,
            match_type="exact",
            decision="matched",
            reason="exact",
        ),
        classification=ClassificationBlock(
            entity_type="business",
            sic_code="5072",
            confidence=0.9,
            method="supplier",
            reason="matched supplier",
        ),
        status="enriched",
        versions=VERSIONS,
        timings_ms={"match": 1.5},
        source=source,
        replay_run_id=f"record-{record_id}",
        processed_at=processed_at,
    )


def make_audit(result: EnrichedPayee, actions: tuple[str, ...] = ("emitted",), offset_s: float = 0) -> AuditEvent:
    assert result.source is not None
    return AuditEvent(
        event_id=AuditEvent.make_event_id(result.source, result.replay_run_id),
        correlation_id=result.correlation_id,
        record_key=result.record_key,
        decisions=[
            AuditDecision(action=action, stage="emit", outcome={"status": result.status}, timings_ms={"match": 1.5})  # type: ignore[arg-type]
            for action in actions
        ],
        versions=VERSIONS,
        order_key=result.order_key,
        result_event_id=result.event_id,
        result_version=result.result_version,
        occurred_at=result.processed_at + timedelta(seconds=offset_s),
    )


DECISION_FIELDS = ("action", "outcome", "timings_ms")


def audit_json(**changes: object) -> bytes:
    event = json.loads(make_audit(make_result(1)).model_dump_json())
    for name, value in changes.items():
        if name in DECISION_FIELDS:
            event["decisions"][0][name] = value
        else:
            event[name] = value
    return json.dumps(event).encode()


def test_audit_and_result_records_become_rows():
    result = make_result(7)
    audit = make_audit(result)
    batch = rows_from_events(
        [
            FakeRecord(AUDIT_TOPIC, 0, 10, audit.model_dump_json().encode()),
            FakeRecord(ENRICHED_TOPIC, 2, 5, result.model_dump_json().encode()),
        ],
        AUDIT_TOPIC,
        ENRICHED_TOPIC,
    )
    assert batch.rejected == []
    [audit_row] = batch.audit
    assert audit_row.audit_event_id == uuid.UUID(audit.event_id)
    assert audit_row.result_event_id == uuid.UUID(result.event_id)
    assert (audit_row.record_key, audit_row.action, audit_row.occurred_at) == ("ap:7", "emitted", START)
    assert json.loads(audit_row.versions) == {"pipeline": "1", "rules": "r1", "index": "i1"}
    [result_row] = batch.results
    assert (result_row.record_key, result_row.status, result_row.supplier_id, result_row.sic_code) == (
        "ap:7",
        "enriched",
        "S1",
        "5072",
    )
    assert EnrichedPayee.model_validate_json(result_row.result) == result


def test_a_timestamp_without_zone_is_taken_as_utc():
    [row] = rows_from_events(
        [FakeRecord(AUDIT_TOPIC, 0, 0, audit_json(occurred_at="2026-01-01T00:00:00"))],
        AUDIT_TOPIC,
        ENRICHED_TOPIC,
    ).audit
    assert row.occurred_at == START


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty value"),
        (b"{not json", "json_invalid"),
        (b"\xff\xfe\x00", "json_invalid"),
        (b"[1, 2]", "model_type"),
        (audit_json(action="teleported"), "action: literal_error"),
        (audit_json(event_id="not-a-uuid"), "event id is not a UUID"),
        (audit_json(result_event_id="42"), "event id is not a UUID"),
        (audit_json(outcome={"note": "a\x00b"}), "NUL character"),
        (audit_json(record_key="ap:\ud800"), "json_invalid"),  # unpaired surrogate
        (audit_json(timings_ms={"match": float("nan")}), "NaN or infinite"),
    ],
)
def test_records_that_cannot_be_stored_are_rejected_without_quoting_them(value, reason):
    batch = rows_from_events([FakeRecord(AUDIT_TOPIC, 3, 99, value)], AUDIT_TOPIC, ENRICHED_TOPIC)
    assert batch.audit == [] and batch.results == []
    [rejected] = batch.rejected
    assert (rejected.topic, rejected.partition, rejected.offset, rejected.value) == (
        AUDIT_TOPIC,
        3,
        99,
        value,
    )
    assert reason in rejected.reason
    assert "teleported" not in rejected.reason and "not-a-uuid" not in rejected.reason


def test_a_bad_record_does_not_cost_its_neighbours():
    good = make_audit(make_result(1)).model_dump_json().encode()
    batch = rows_from_events(
        [
            FakeRecord(AUDIT_TOPIC, 0, 0, good),
            FakeRecord(AUDIT_TOPIC, 0, 1, b"{"),
            FakeRecord(AUDIT_TOPIC, 0, 2, good),
        ],
        AUDIT_TOPIC,
        ENRICHED_TOPIC,
    )
    assert len(batch.audit) == 2
    assert [row.offset for row in batch.rejected] == [1]


def test_one_audit_event_is_one_row_per_decision_with_stable_ids():
    result = make_result(3)
    record = FakeRecord(AUDIT_TOPIC, 0, 0, make_audit(result, ("received", "matched", "emitted")).model_dump_json().encode())
    rows = rows_from_events([record], AUDIT_TOPIC, ENRICHED_TOPIC).audit
    assert [(row.action, row.decision_index) for row in rows] == [("received", 0), ("matched", 1), ("emitted", 2)]
    assert len({row.event_id for row in rows}) == 3
    assert rows == rows_from_events([record], AUDIT_TOPIC, ENRICHED_TOPIC).audit  # redelivered: same ids
    repaired = make_audit(result.model_copy(update={"result_version": "v2"}), ("received", "matched", "emitted"))
    again = rows_from_events([FakeRecord(AUDIT_TOPIC, 0, 1, repaired.model_dump_json().encode())], AUDIT_TOPIC, ENRICHED_TOPIC).audit
    assert not {row.event_id for row in rows} & {row.event_id for row in again}


def test_a_result_on_the_audit_topic_is_rejected():
    batch = rows_from_events(
        [FakeRecord(AUDIT_TOPIC, 0, 0, make_result(1).model_dump_json().encode())],
        AUDIT_TOPIC,
        ENRICHED_TOPIC,
    )
    assert len(batch.rejected) == 1


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half():
    lowest = [backoff_delay(attempt, 0.2, 10.0, jitter=lambda: 0.0) for attempt in range(10)]
    highest = [backoff_delay(attempt, 0.2, 10.0, jitter=lambda: 1.0) for attempt in range(10)]
    assert highest[:4] == pytest.approx([0.2, 0.4, 0.8, 1.6])
    assert highest[-1] == 10.0 and lowest[-1] == 5.0
    assert all(low == high / 2 for low, high in zip(lowest, highest, strict=True))


def test_audit_table_shortens_long_outcomes():
    entry = {
        "occurred_at": START.isoformat(),
        "action": "matched",
        "stage": "match",
        "record_key": "ap:1",
        "event_id": str(uuid.UUID(int=1)),
        "outcome": {"reason": "x" * 200},
    }
    header, line = format_audit_table([entry]).splitlines()
    assert header.split() == ["occurred_at", "action", "stage", "record_key", "event_id", "outcome"]
    assert line.startswith(START.isoformat()) and line.endswith("…") and "ap:1" in line


def test_a_supplier_row_carries_the_place_the_matcher_reads():
    registry = {"supplier_id": "OUI1", "name": "Apple, Inc.", "address": "1 Infinite Loop | Cupertino CA 95014",
                "country": "US", "category": "business"}
    row = supplier_row(json.dumps(registry).encode())
    assert (row.city, row.state) == ("CUPERTINO", "CA")
    chapter = {"supplier_id": "EIN1", "name": "AMERICAN LEGION", "city": "Homer", "state": "AK", "country": "US"}
    row = supplier_row(json.dumps(chapter).encode())
    assert (row.city, row.state) == ("Homer", "AK")
