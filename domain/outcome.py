"""Every output of a processing step, as values: the core's answer for one source record.

One pure call per record returns an ``Outcome``: the output records to publish (result, review
copy, audit event, LLM hand-off, dead letter), each as (topic role, key, value bytes, headers).
Roles are names such as ``"enriched"``; the delivery layer maps them to configured topics.
A record goes through up to three stages (fast path, LLM, merchant data), each handing it on
with one hand-off output, and the last one it reaches returns its result.
Nothing here knows about Kafka or Faust.

Every outcome fits the broker's message size: an output that would not fit turns the whole
outcome into a dead letter, and a dead letter keeps only as much of the original as fits
(with the original's length and SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from domain.classify import Classification
from domain.decisions import DecisionLookup
from domain.matching import DefaultPlaces, SupplierIndex
from domain.merchant import MerchantPolicy, MerchantProvider, enrich_batch, needs_merchant_data
from domain.pipeline import (
    Enrichment,
    Rejection,
    Thresholds,
    build_result,
    classification_block,
    decode_record,
    enrich,
    route_to_llm,
)
from domain.privacy import LlmPrivacy, failure_summary
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

Role = Literal["enriched", "review", "audit", "dlq", "llm", "merchant"]
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
    # Bytes this record takes in a produce request (the core and the delivery layer both check it).
    size: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        header_bytes = sum(len(name) + len(value) for name, value in self.headers)
        object.__setattr__(self, "size", len(self.key or b"") + len(self.value) + header_bytes + RECORD_OVERHEAD_BYTES)


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
    llm_privacy: LlmPrivacy = "strict"
    default_places: DefaultPlaces = field(default_factory=DefaultPlaces)
    # None: no merchant-data stage runs (no provider configured).
    merchant_policy: MerchantPolicy | None = None


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
                "method": match.method,
                "decision_id": match.decision_id,
            },
            timings_ms={"match": result.timings_ms.get("match", 0.0)},
        ),
    ]
    if sent_to_llm:
        disclosed = {"possibly_personal_name": True, "llm_privacy": "permissive"}
        outcome = disclosed if result.llm_privacy == "disclosed" else {}
        decisions.append(AuditDecision(action="sent_to_llm", stage="llm", outcome=outcome))
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
                "decision_id": classification.decision_id,
            },
            timings_ms={k: v for k, v in result.timings_ms.items() if k in ("classify", "llm")},
        )
    )
    if result.enrichment is not None:
        merchant = result.enrichment
        decisions.append(
            AuditDecision(
                action="merchant_enriched",
                stage="merchant",
                outcome={
                    "provider": merchant.provider,
                    "status": merchant.status,
                    "reason": merchant.reason,
                    "mcc": merchant.mcc,
                    "accepts_cards": merchant.accepts_cards,
                    "level2": merchant.level2,
                    "level3": merchant.level3,
                    "recency": merchant.recency,
                },
                timings_ms={"merchant": merchant.elapsed_ms or 0.0},
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


def hand_over(role: Role, enrichment: Enrichment, raw_key: bytes | None, config: CoreConfig) -> Outcome | None:
    """The record handed to a later stage on its own topic; None if the hand-off would not fit
    (the record then gets its result without that stage)."""
    output = OutputRecord(role, raw_key, enrichment.to_json(), ())
    if output.size > config.max_message_bytes:
        return None
    return Outcome(outputs=(output,), handed_to_llm=role == "llm")


def classified_outcome(
    enrichment: Enrichment,
    sent_to_llm: bool,
    raw_key: bytes | None,
    raw_value: bytes | None,
    versions: Versions,
    config: CoreConfig,
) -> Outcome:
    """A classified record: handed to the merchant-data stage when it is a business the policy
    allows, its result otherwise. ``raw_value`` is what a dead letter keeps."""
    if config.merchant_policy is not None and needs_merchant_data(enrichment, config.merchant_policy):
        handed = hand_over("merchant", enrichment, raw_key, config)
        if handed is not None:
            return handed
    assert enrichment.source is not None
    result = build_result(enrichment, versions, config.thresholds, enrichment.source)
    return result_outcome(result, sent_to_llm, raw_key, raw_value, config.max_message_bytes)


def raw_record_outcome(
    raw_key: bytes | None,
    raw_value: bytes | None,
    source: SourcePosition,
    replay_run_id: str | None,
    index: SupplierIndex,
    versions_of: VersionsOf,
    config: CoreConfig,
    decisions: DecisionLookup | None = None,
) -> Outcome:
    """The fast path for one record of ``payees.raw``: validate → match → classify → decide
    (reviewers' ``decisions`` first), or hand over to the LLM or merchant-data stage. Total: any
    failure is a dead letter, never an exception."""
    decoded = decode_record(raw_value, config.max_record_bytes)
    if isinstance(decoded, Rejection):
        return dead_letter_outcome(
            decoded, raw_key, raw_value, source, replay_run_id, versions_of(index), config.max_message_bytes
        )
    try:
        enrichment = enrich(
            decoded,
            index,
            source=source,
            replay_run_id=replay_run_id,
            default_places=config.default_places,
            decisions=decisions,
        )
        if config.llm_enabled:
            # Under strict privacy a possibly personal name is withheld (its result goes to review).
            enrichment, to_llm = route_to_llm(enrichment, config.thresholds, config.llm_privacy)
            handed = hand_over("llm", enrichment, raw_key, config) if to_llm else None
            if handed is not None:
                return handed
        return classified_outcome(enrichment, False, raw_key, raw_value, versions_of(index), config)
    except Exception as exc:  # a bug or bad data in the core must not lose the record
        rejection = Rejection("enrich", type(exc).__name__, failure_summary(exc))
        return dead_letter_outcome(
            rejection, raw_key, raw_value, source, replay_run_id, versions_of(index), config.max_message_bytes
        )


def hand_off_input(value: bytes | None, stage: str) -> Enrichment | Rejection:
    """Decode a hand-off record of the LLM or merchant-data stage."""
    try:
        enrichment = Enrichment.from_json(value or b"")
    except Exception as exc:  # its messages may quote the input (a payee name): type and place only
        return Rejection(stage, type(exc).__name__, failure_summary(exc))
    if enrichment.source is None:
        return Rejection(stage, "no_source", "hand-off record has no source position")
    return enrichment


def stage_result_outcome(enrichment: Enrichment, sent_to_llm: bool, versions: Versions, config: CoreConfig) -> Outcome:
    """The result of a handed-over record, under the ids of its source record."""
    assert enrichment.source is not None
    result = build_result(enrichment, versions, config.thresholds, enrichment.source)
    raw = payee_record_bytes(enrichment.record)
    return result_outcome(result, sent_to_llm, enrichment.record.record_key.encode(), raw, config.max_message_bytes)


def llm_result_outcome(
    enrichment: Enrichment,
    classification: Classification,
    elapsed_ms: float,
    versions: Versions,
    config: CoreConfig,
) -> Outcome:
    """The LLM stage's answer for a handed-over record: its result, or the hand-off to the
    merchant-data stage."""
    enrichment = enrichment.with_classification(classification_block(classification), "llm", elapsed_ms)
    raw = payee_record_bytes(enrichment.record)
    return classified_outcome(enrichment, True, enrichment.record.record_key.encode(), raw, versions, config)


def stage_failure_outcome(
    rejection: Rejection,
    raw_key: bytes | None,
    hand_off_value: bytes | None,
    position: SourcePosition,
    enrichment: Enrichment | None,
    versions: Versions,
    config: CoreConfig,
) -> Outcome:
    """A dead letter of a later stage. It holds the raw payee record (not the hand-off format)
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


@dataclass(frozen=True, slots=True)
class HandOff:
    """A record read from a stage's hand-off topic."""

    key: bytes | None
    value: bytes | None
    position: SourcePosition


async def merchant_stage_outcomes(
    hand_offs: Sequence[HandOff],
    provider: MerchantProvider,
    versions: Versions,
    config: CoreConfig,
    today: date,
) -> list[Outcome]:
    """The merchant-data stage for a batch, one outcome per hand-off in order: the provider is
    called once for the records the policy allows (a provider failure is a result with
    ``enrichment.status`` "unavailable"); an unreadable hand-off is a dead letter."""
    assert config.merchant_policy is not None
    decoded = [hand_off_input(hand_off.value, "merchant") for hand_off in hand_offs]
    readable = [item for item in decoded if isinstance(item, Enrichment)]
    try:
        enriched = iter(await enrich_batch(readable, provider, config.merchant_policy, today))
    except Exception as exc:  # a bug in the core: every record of the batch is dead-lettered, not lost
        failure = Rejection("merchant", type(exc).__name__, failure_summary(exc))
        return [
            stage_failure_outcome(
                failure, hand_off.key, hand_off.value, hand_off.position,
                item if isinstance(item, Enrichment) else None, versions, config,
            )
            for hand_off, item in zip(hand_offs, decoded, strict=True)
        ]
    outcomes = []
    for hand_off, item in zip(hand_offs, decoded, strict=True):
        if isinstance(item, Rejection):
            outcomes.append(
                stage_failure_outcome(item, hand_off.key, hand_off.value, hand_off.position, None, versions, config)
            )
        else:
            enrichment = next(enriched)
            sent_to_llm = enrichment.classification.method in ("llm", "degraded")
            outcomes.append(stage_result_outcome(enrichment, sent_to_llm, versions, config))
    return outcomes


def payee_record_bytes(record: PayeeRecord) -> bytes:
    return record.model_dump_json(exclude={"schema_version"}).encode()
