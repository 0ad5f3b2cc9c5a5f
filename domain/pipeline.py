"""The processing steps as plain functions: decode → match → classify → decide → events.

Agents and the batch command call these; nothing here knows about Kafka or Faust.
Failures are values (``Rejection``), never exceptions that a caller could forget to catch.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from domain.classify import RULES_VERSION, Classification, classify_payee
from domain.matching import MatchResult, SupplierIndex
from domain.normalize import normalize_name
from schemas.events import (
    ClassificationBlock,
    EnrichedPayee,
    MatchBlock,
    PayeeRecord,
    RunnerUp,
    SourcePosition,
    Versions,
    deterministic_id,
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record cannot be processed; it goes to the dead-letter topic."""

    stage: str
    error_type: str
    message: str


@dataclass(frozen=True, slots=True)
class Thresholds:
    review: float
    llm: float


def decode_record(raw: bytes | None, max_bytes: int) -> PayeeRecord | Rejection:
    """Validate step: bytes from ``payees.raw`` into a ``PayeeRecord``."""
    if raw is None:
        return Rejection("validate", "empty_message", "message has no value")
    if len(raw) > max_bytes:
        return Rejection("validate", "oversized", f"{len(raw)} bytes exceeds {max_bytes}")
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Rejection("validate", "malformed_json", str(exc)[:500])
    if not isinstance(payload, dict):
        return Rejection("validate", "not_an_object", f"JSON {type(payload).__name__}")
    try:
        return PayeeRecord.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        return Rejection("validate", "schema_violation", problems[:1000])


def correlation_id_for(record: PayeeRecord, fingerprint: str) -> str:
    return deterministic_id("correlation", record.record_key, fingerprint)


@dataclass(frozen=True, slots=True)
class Enrichment:
    """A record after the fast path: matched and classified by rules."""

    record: PayeeRecord
    fingerprint: str
    correlation_id: str
    normalized_name: str
    match: MatchBlock
    classification: ClassificationBlock
    timings_ms: dict[str, float] = field(default_factory=dict)
    source: SourcePosition | None = None
    replay_run_id: str | None = None

    def needs_llm(self, thresholds: Thresholds) -> bool:
        return self.classification.confidence < thresholds.llm

    def with_classification(self, classification: ClassificationBlock, stage: str, elapsed_ms: float) -> Enrichment:
        return dataclasses.replace(
            self, classification=classification, timings_ms={**self.timings_ms, stage: elapsed_ms}
        )

    def to_json(self) -> bytes:
        """Hand-over format to the LLM agent (internal topic)."""
        return json.dumps(
            {
                "record": self.record.model_dump(mode="json"),
                "fingerprint": self.fingerprint,
                "correlation_id": self.correlation_id,
                "normalized_name": self.normalized_name,
                "match": self.match.model_dump(mode="json"),
                "classification": self.classification.model_dump(mode="json"),
                "timings_ms": self.timings_ms,
                "source": self.source.model_dump() if self.source else None,
                "replay_run_id": self.replay_run_id,
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Enrichment:
        data = json.loads(raw)
        record = PayeeRecord.model_validate(data["record"])
        return cls(
            record=record,
            fingerprint=data.get("fingerprint") or record.fingerprint(),
            correlation_id=data["correlation_id"],
            normalized_name=data["normalized_name"],
            match=MatchBlock.model_validate(data["match"]),
            classification=ClassificationBlock.model_validate(data["classification"]),
            timings_ms=data["timings_ms"],
            source=SourcePosition.model_validate(data["source"]) if data["source"] else None,
            replay_run_id=data["replay_run_id"],
        )


def match_block(result: MatchResult) -> MatchBlock:
    runner_up = None
    if result.runner_up is not None:
        runner_id, runner_name, runner_score = result.runner_up
        runner_up = RunnerUp(supplier_id=runner_id, supplier_name=runner_name, score=runner_score)
    return MatchBlock(
        supplier_id=result.supplier_id,
        supplier_name=result.supplier_name,
        score=round(result.score, 4),
        match_type=result.match_type,
        decision=result.decision,
        runner_up=runner_up,
        reason=result.reason,
    )


def classification_block(result: Classification) -> ClassificationBlock:
    return ClassificationBlock(
        entity_type=result.entity_type,
        subtype=result.subtype,
        sic_code=result.sic_code,
        sic_description=result.sic_description,
        confidence=round(result.confidence, 4),
        method=result.method,
        reason=result.reason,
    )


def classification_of(block: ClassificationBlock) -> Classification:
    """The rules' classification back from its event block (the LLM stage refines it)."""
    return Classification(**block.model_dump(exclude={"decision_id"}))


def enrich(
    record: PayeeRecord,
    index: SupplierIndex,
    source: SourcePosition | None = None,
    replay_run_id: str | None = None,
) -> Enrichment:
    """Match step then classify step (rules; the supplier's category when matched)."""
    fingerprint = record.fingerprint()
    started = time.perf_counter()
    normalized = normalize_name(record.payee_name)
    match = index.match(
        record.payee_name, city=record.city, state=record.state, postal_code=record.postal_code
    )
    matched_at = time.perf_counter()
    matched = match.decision == "matched"
    classification = classify_payee(
        record.payee_name,
        supplier_category=match.supplier_category if matched else None,
        supplier_code=match.supplier_code if matched else None,
    )
    classified_at = time.perf_counter()
    return Enrichment(
        record=record,
        fingerprint=fingerprint,
        correlation_id=correlation_id_for(record, fingerprint),
        normalized_name=normalized.key,
        match=match_block(match),
        classification=classification_block(classification),
        timings_ms={
            "match": round((matched_at - started) * 1000, 3),
            "classify": round((classified_at - matched_at) * 1000, 3),
        },
        source=source,
        replay_run_id=replay_run_id,
    )


def review_reasons(enrichment: Enrichment, thresholds: Thresholds) -> list[str]:
    reasons = []
    if enrichment.match.decision == "ambiguous":
        reasons.append("ambiguous_match")
    if enrichment.classification.entity_type == "unknown":
        reasons.append("unknown_entity_type")
    if enrichment.classification.confidence < thresholds.review:
        reasons.append("low_classification_confidence")
    if enrichment.classification.method == "degraded":
        reasons.append("llm_unavailable")
    return reasons


_DOMAIN_ROOT = Path(__file__).resolve().parent
# Shipped data that is not decision logic: the demo's sample supplier list.
_NOT_LOGIC = frozenset({_DOMAIN_ROOT / "data" / "sample_suppliers.csv.gz"})


@functools.cache
def _decision_logic_digest(thresholds: Thresholds, match_threshold: float, ambiguity_margin: float) -> str:
    """Digest of everything that decides a result besides the input and the supplier index: the
    domain code and its data (normalisation, matching weights, classification rules) and the
    thresholds. A change to any of them changes the rules version, hence the event ids of
    reprocessed records, so consumers that upsert by event id take the new result."""
    digest = hashlib.blake2b(repr((thresholds, match_threshold, ambiguity_margin)).encode(), digest_size=4)
    for path in sorted(_DOMAIN_ROOT.rglob("*")):
        if path.is_file() and path.suffix != ".pyc" and path not in _NOT_LOGIC:
            digest.update(path.relative_to(_DOMAIN_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def current_versions(index: SupplierIndex, pipeline_version: str, thresholds: Thresholds) -> Versions:
    logic = _decision_logic_digest(thresholds, index.match_threshold, index.ambiguity_margin)
    return Versions(pipeline=pipeline_version, rules=f"{RULES_VERSION}+{logic}", index=index.index_version)


def build_result(
    enrichment: Enrichment, versions: Versions, thresholds: Thresholds, source: SourcePosition
) -> EnrichedPayee:
    """Decide step: status and review reasons; ids and order key from the source position."""
    reasons = review_reasons(enrichment, thresholds)
    fingerprint = enrichment.fingerprint
    status = "review" if reasons else "enriched"
    return EnrichedPayee(
        event_id=EnrichedPayee.make_event_id(source, enrichment.replay_run_id),
        result_version=result_version(fingerprint, enrichment, status, reasons),
        order_key=source.offset,
        correlation_id=enrichment.correlation_id,
        record_key=enrichment.record.record_key,
        record_fingerprint=fingerprint,
        input=enrichment.record,
        normalized_name=enrichment.normalized_name,
        match=enrichment.match,
        classification=enrichment.classification,
        status=status,
        review_reasons=reasons,
        versions=versions,
        timings_ms=enrichment.timings_ms,
        source=source,
        replay_run_id=enrichment.replay_run_id,
        processed_at=datetime.now(UTC),
    )


def result_version(fingerprint: str, enrichment: Enrichment, status: str, reasons: list[str]) -> str:
    """Digest of what was decided about the input: changes exactly when the outcome does.
    (The blocks serialise their fields in declaration order, so their JSON is canonical.)"""
    digest = hashlib.blake2b(digest_size=8)
    for part in (fingerprint, enrichment.normalized_name, status, *reasons):
        digest.update(part.encode())
        digest.update(b"\x1f")
    digest.update(enrichment.match.model_dump_json().encode())
    digest.update(enrichment.classification.model_dump_json().encode())
    return digest.hexdigest()
