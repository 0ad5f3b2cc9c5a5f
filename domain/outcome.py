"""Every output of a processing step, as values: the core's answer for one source record.

One pure call per record returns an ``Outcome``: the output records to publish (result, review
copy, audit event, LLM hand-off, dead letter), each as (topic role, key, value bytes, headers).
Roles are names such as ``"enriched"``; the delivery layer maps them to configured topics.
Nothing here knows about Kafka or Faust.

Every outcome fits the broker's message size: an output that would not fit turns the whole
outcome into a dead letter, and a dead letter keeps only as much of the original as fits
(with the original's length and SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from domain.classify import Classification
from domain.matching import SupplierIndex
from domain.pipeline import (
    Enrichment,
    Rejection,
    Thresholds,
    build_result,
    classification_block,
    decode_record,
    enrich,
)
from schemas.events import (
    SCHEMA_VERSION,
    AuditDecision,
    AuditEvent,
    DeadLetter,
    EnrichedPayee,
    PayeeRecord,
    SourcePosition,
    Versions,
    deterministic_id,
)

Role = Literal["enriched", "review", "audit", "dlq", "llm"]
Headers = tuple[tuple[str, bytes], ...]

# Kafka's per-record framing (offset delta, lengths, attributes) plus the record batch header a
# lone record pays: what a message costs beyond its key, value and headers.
RECORD_OVERHEAD_BYTES = 128
# A dead letter keeps at most this much of the original key.
DEAD_LETTER_KEY_BYTES = 1024
# Error texts in dead letters are bounded too: they may quote the input.
ERROR_MESSAGE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class OutputRecord:
    role: Role
    key: bytes | None
    value: bytes
    headers: Headers

    @property
    def size(self) -> int:
        """Bytes this record takes in a produce request."""
        header_bytes = sum(len(name) + len(value) for name, value in self.headers)
        return len(self.key or b"") + len(self.value) + header_bytes + RECORD_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one source record turned into. ``result`` / ``letter`` are kept for metrics."""

    outputs: tuple[OutputRecord, ...]
    result: EnrichedPayee | None = None
    letter: DeadLetter | None = None
    handed_to_llm: bool = False

    @property
    def dead_lettered(self) -> bool:
        return self.letter is not None


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """What the core needs besides the input and the index."""

    thresholds: Thresholds
    max_record_bytes: int
    max_message_bytes: int
    llm_enabled: bool


VersionsOf = Callable[[SupplierIndex], Versions]


def event_headers(event_id: str, correlation_id: str, order_key: int, **extra: str) -> Headers:
    headers = {
        "x-event-id": event_id,
        "x-correlation-id": correlation_id,
        "x-schema-version": str(SCHEMA_VERSION),
        "x-order-key": str(order_key),
        **extra,
    }
    return tuple((name, value.encode()) for name, value in headers.items())


# ---------------------------------------------------------------------------------------------
# Audit: one event per record, listing every decision


def result_decisions(result: EnrichedPayee, sent_to_llm: bool) -> list[AuditDecision]:
    match, classification = result.match, result.classification
    decisions = [
        AuditDecision(action="received", stage="validate", outcome={"source": result.source and result.source.model_dump()}),
        AuditDecision(
            action="matched",
            stage="match",
            outcome={
                "decision": match.decision,
                "match_type": match.match_type,
                "supplier_id": match.supplier_id,
                "score": match.score,
                "runner_up_id": match.runner_up.supplier_id if match.runner_up else None,
                "reason": match.reason,
            },
            timings_ms={"match": result.timings_ms.get("match", 0.0)},
        ),
    ]
    if sent_to_llm:
        decisions.append(AuditDecision(action="sent_to_llm", stage="llm"))
    if classification.method == "degraded":
        decisions.append(AuditDecision(action="degraded", stage="llm", outcome={"reason": classification.reason}))
    decisions.append(
        AuditDecision(
            action="classified",
            stage="classify",
            outcome={
                "entity_type": classification.entity_type,
                "subtype": classification.subtype,
                "sic_code": classification.sic_code,
                "confidence": classification.confidence,
                "method": classification.method,
            },
            timings_ms={k: v for k, v in result.timings_ms.items() if k in ("classify", "llm")},
        )
    )
    if result.status == "review":
        decisions.append(AuditDecision(action="sent_to_review", stage="emit", outcome={"reasons": result.review_reasons}))
    if result.replay_run_id:
        decisions.append(AuditDecision(action="replayed", stage="emit"))
    decisions.append(
        AuditDecision(action="emitted", stage="emit", outcome={"status": result.status}, timings_ms=result.timings_ms)
    )
    return decisions


def result_audit_event(result: EnrichedPayee, sent_to_llm: bool) -> AuditEvent:
    assert result.source is not None
    return AuditEvent(
        event_id=AuditEvent.make_event_id(result.source, result.replay_run_id),
        correlation_id=result.correlation_id,
        record_key=result.record_key,
        decisions=result_decisions(result, sent_to_llm),
        versions=result.versions,
        order_key=result.order_key,
        result_event_id=result.event_id,
        result_version=result.result_version,
        replay_run_id=result.replay_run_id,
        occurred_at=result.processed_at,
    )


def rejection_audit_event(letter: DeadLetter, origin: SourcePosition, versions: Versions) -> AuditEvent:
    return AuditEvent(
        event_id=AuditEvent.make_event_id(origin, letter.replay_run_id),
        correlation_id=letter.correlation_id,
        record_key=None,
        decisions=[
            AuditDecision(
                action="rejected",
                stage=letter.stage,
                outcome={
                    "error_type": letter.error_type,
                    "source_topic": letter.source_topic,
                    "source_partition": letter.source_partition,
                    "source_offset": letter.source_offset,
                    "original_size": letter.original_size,
                },
            )
        ],
        versions=versions,
        order_key=origin.offset,
        dead_letter_event_id=letter.event_id,
        replay_run_id=letter.replay_run_id,
        occurred_at=letter.occurred_at,
    )


def audit_output(event: AuditEvent) -> OutputRecord:
    return OutputRecord(
        role="audit",
        key=(event.record_key or event.correlation_id).encode(),
        value=event.model_dump_json().encode(),
        headers=event_headers(event.event_id, event.correlation_id, event.order_key),
    )


# ---------------------------------------------------------------------------------------------
# Dead letters, size-bounded


def dead_letter(
    rejection: Rejection,
    raw_key: bytes | None,
    raw_value: bytes | None,
    source: SourcePosition,
    replay_run_id: str | None = None,
    origin: SourcePosition | None = None,
    value_budget: int | None = None,
) -> DeadLetter:
    """The dead letter of a record read at ``source``; ``origin`` is the position on
    ``payees.raw`` it came from (the same unless it was rejected by a later stage). At most
    ``value_budget`` bytes of the original are kept (all of it when None)."""
    origin = origin or source
    value = raw_value or b""
    value_digest = hashlib.sha256(value).hexdigest()
    kept = value if value_budget is None else value[: max(0, value_budget)]
    key = raw_key[:DEAD_LETTER_KEY_BYTES] if raw_key is not None else None
    return DeadLetter(
        event_id=DeadLetter.make_event_id(origin, replay_run_id),
        correlation_id=deterministic_id("correlation", source.topic, value_digest),
        stage=rejection.stage,
        error_type=rejection.error_type,
        error_message=rejection.message[:ERROR_MESSAGE_CHARS],
        source_topic=source.topic,
        source_partition=source.partition,
        source_offset=source.offset,
        original_key_b64=base64.b64encode(key).decode() if key is not None else None,
        original_value_b64=base64.b64encode(kept).decode(),
        original_size=len(value),
        original_sha256=value_digest,
        original_truncated=len(kept) < len(value) or (raw_key is not None and len(raw_key) > len(key or b"")),
        order_key=origin.offset,
        replay_run_id=replay_run_id,
        occurred_at=datetime.now(UTC),
    )


def dead_letter_output(letter: DeadLetter) -> OutputRecord:
    key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 is not None else None
    return OutputRecord(
        role="dlq",
        key=key,
        value=letter.model_dump_json().encode(),
        headers=event_headers(
            letter.event_id,
            letter.correlation_id,
            letter.order_key,
            **{
                "x-error-type": letter.error_type,
                "x-error-stage": letter.stage,
                "x-source-topic": letter.source_topic,
                "x-source-partition": str(letter.source_partition),
                "x-source-offset": str(letter.source_offset),
            },
        ),
    )


def dead_letter_outcome(
    rejection: Rejection,
    raw_key: bytes | None,
    raw_value: bytes | None,
    source: SourcePosition,
    replay_run_id: str | None,
    versions: Versions,
    max_message_bytes: int,
    origin: SourcePosition | None = None,
) -> Outcome:
    """Dead letter plus its audit event, the letter keeping as much of the original as fits."""
    letter = dead_letter(rejection, raw_key, raw_value, source, replay_run_id, origin)
    output = dead_letter_output(letter)
    if output.size > max_message_bytes:
        envelope = dead_letter(rejection, raw_key, raw_value, source, replay_run_id, origin, value_budget=0)
        room = max_message_bytes - dead_letter_output(envelope).size
        # base64 turns every 3 bytes into 4 characters
        letter = dead_letter(rejection, raw_key, raw_value, source, replay_run_id, origin, value_budget=room // 4 * 3)
        output = dead_letter_output(letter)
    audit = audit_output(rejection_audit_event(letter, origin or source, versions))
    return Outcome(outputs=(output, audit), letter=letter)


# ---------------------------------------------------------------------------------------------
# The steps


def result_outcome(
    result: EnrichedPayee, sent_to_llm: bool, raw_key: bytes | None, raw_value: bytes | None, max_message_bytes: int
) -> Outcome:
    """Result, review copy when unsure, and the record's audit event; a dead letter if any
    would exceed the message size (the input is then kept, as far as it fits, for replay)."""
    value = result.model_dump_json().encode()
    key = result.record_key.encode()
    headers = event_headers(
        result.event_id,
        result.correlation_id,
        result.order_key,
        **{"x-status": result.status, "x-result-version": result.result_version},
    )
    outputs = [OutputRecord("enriched", key, value, headers)]
    if result.status == "review":
        outputs.append(OutputRecord("review", key, value, headers))
    outputs.append(audit_output(result_audit_event(result, sent_to_llm)))
    too_large = max(output.size for output in outputs)
    if too_large > max_message_bytes:
        assert result.source is not None
        rejection = Rejection("emit", "output_too_large", f"{too_large} bytes exceeds {max_message_bytes}")
        return dead_letter_outcome(
            rejection, raw_key, raw_value, result.source, result.replay_run_id, result.versions, max_message_bytes
        )
    return Outcome(outputs=tuple(outputs), result=result)


def raw_record_outcome(
    raw_key: bytes | None,
    raw_value: bytes | None,
    source: SourcePosition,
    replay_run_id: str | None,
    index: SupplierIndex,
    versions_of: VersionsOf,
    config: CoreConfig,
) -> Outcome:
    """The fast path for one record of ``payees.raw``: validate → match → classify → decide,
    or hand over to the LLM stage. Total: any failure is a dead letter, never an exception."""
    decoded = decode_record(raw_value, config.max_record_bytes)
    if isinstance(decoded, Rejection):
        return dead_letter_outcome(
            decoded, raw_key, raw_value, source, replay_run_id, versions_of(index), config.max_message_bytes
        )
    try:
        enrichment = enrich(decoded, index, source=source, replay_run_id=replay_run_id)
        if config.llm_enabled and enrichment.needs_llm(config.thresholds):
            hand_over = OutputRecord("llm", raw_key, enrichment.to_json(), ())
            if hand_over.size <= config.max_message_bytes:
                return Outcome(outputs=(hand_over,), handed_to_llm=True)
        result = build_result(enrichment, versions_of(index), config.thresholds, source)
        return result_outcome(result, False, raw_key, raw_value, config.max_message_bytes)
    except Exception as exc:  # a bug or bad data in the core must not lose the record
        rejection = Rejection("enrich", type(exc).__name__, str(exc)[:500])
        return dead_letter_outcome(
            rejection, raw_key, raw_value, source, replay_run_id, versions_of(index), config.max_message_bytes
        )


def llm_input(value: bytes | None) -> Enrichment | Rejection:
    """Decode an LLM hand-off record."""
    try:
        enrichment = Enrichment.from_json(value or b"")
    except Exception as exc:
        return Rejection("llm", type(exc).__name__, str(exc)[:500])
    if enrichment.source is None:
        return Rejection("llm", "no_source", "hand-off record has no source position")
    return enrichment


def llm_result_outcome(
    enrichment: Enrichment,
    classification: Classification,
    elapsed_ms: float,
    versions: Versions,
    config: CoreConfig,
) -> Outcome:
    """The LLM stage's result for a handed-over record, under the ids of its source record."""
    assert enrichment.source is not None
    enrichment = enrichment.with_classification(classification_block(classification), "llm", elapsed_ms)
    result = build_result(enrichment, versions, config.thresholds, enrichment.source)
    raw = payee_record_bytes(enrichment.record)
    return result_outcome(result, True, enrichment.record.record_key.encode(), raw, config.max_message_bytes)


def llm_failure_outcome(
    rejection: Rejection,
    raw_key: bytes | None,
    hand_off_value: bytes | None,
    position: SourcePosition,
    enrichment: Enrichment | None,
    versions: Versions,
    config: CoreConfig,
) -> Outcome:
    """A dead letter of the LLM stage. It holds the raw payee record (not the hand-off format)
    when the hand-off could be read, so that replaying the dead letter re-processes it."""
    if enrichment is None or enrichment.source is None:
        return dead_letter_outcome(rejection, raw_key, hand_off_value, position, None, versions, config.max_message_bytes)
    raw = payee_record_bytes(enrichment.record)
    return dead_letter_outcome(
        rejection,
        raw_key,
        raw,
        position,
        enrichment.replay_run_id,
        versions,
        config.max_message_bytes,
        origin=enrichment.source,
    )


def payee_record_bytes(record: PayeeRecord) -> bytes:
    return record.model_dump_json(exclude={"schema_version"}).encode()
