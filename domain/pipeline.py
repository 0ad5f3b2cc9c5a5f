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
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from domain.address import ParsedAddress, parse_address
from domain.classify import RULES_VERSION, Classification, classify_payee
from domain.decisions import (
    NO_DECISIONS,
    DecisionLookup,
    apply_entity_decision,
    apply_match_decision,
    decision_place,
)
from domain.matching import DefaultPlaces, Evidence, MatchResult, SupplierIndex
from domain.normalize import normalize_name
from domain.suppliers import Supplier
from domain.resilience import LruCache
from domain.privacy import PERSONAL_NAME_WITHHELD, LlmDisclosure, LlmPrivacy, error_location, llm_disclosure
from schemas.events import (
    AddressBlock,
    ClassificationBlock,
    EnrichedPayee,
    EnrichmentBlock,
    MatchBlock,
    PayeeRecord,
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
        # Locations and pydantic's messages only: str(exc) would quote each input_value.
        problems = "; ".join(f"{error_location(err['loc'])}: {err['msg']}" for err in exc.errors())
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
    address: AddressBlock | None = None
    merchant: EnrichmentBlock | None = None
    llm_privacy: LlmDisclosure | None = None  # see domain/privacy.py

    def needs_llm(self, thresholds: Thresholds) -> bool:
        return self.classification.confidence < thresholds.llm

    def with_classification(self, classification: ClassificationBlock, stage: str, elapsed_ms: float) -> Enrichment:
        return dataclasses.replace(
            self, classification=classification, timings_ms={**self.timings_ms, stage: elapsed_ms}
        )

    def with_merchant(self, block: EnrichmentBlock) -> Enrichment:
        timings = {**self.timings_ms, "merchant": block.elapsed_ms} if block.elapsed_ms is not None else self.timings_ms
        return dataclasses.replace(self, merchant=block, timings_ms=timings)

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
                "address": self.address.model_dump() if self.address else None,
                "merchant": self.merchant.model_dump(mode="json") if self.merchant else None,
                "llm_privacy": self.llm_privacy,
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
            address=AddressBlock.model_validate(data["address"]) if data.get("address") else None,
            merchant=EnrichmentBlock.model_validate(data["merchant"]) if data.get("merchant") else None,
            llm_privacy=data.get("llm_privacy"),
        )


def _evidence(terms: tuple[Evidence, ...]) -> list[dict[str, object]]:
    return [{"feature": term.feature, "value": term.value, "contribution": term.contribution} for term in terms]


def route_to_llm(enrichment: Enrichment, thresholds: Thresholds, privacy: LlmPrivacy) -> tuple[Enrichment, bool]:
    """Whether the record goes to the LLM, and the enrichment with the privacy decision taken:
    under strict privacy a possibly personal name is withheld (and the record goes to review)."""
    if not enrichment.needs_llm(thresholds):
        return enrichment, False
    checked = privacy_checked(enrichment, privacy)
    return checked, checked.llm_privacy != "withheld"


def privacy_checked(enrichment: Enrichment, privacy: LlmPrivacy) -> Enrichment:
    """The enrichment with the privacy decision taken under the current setting. The LLM step
    takes it again before each call: a record queued by an older worker, or under permissive
    privacy, is withheld if the setting now says so (its result goes to review instead)."""
    return dataclasses.replace(enrichment, llm_privacy=llm_disclosure(enrichment.classification, privacy))


def match_block(result: MatchResult) -> MatchBlock:
    # One validation of the whole block: a model per evidence term and candidate costs more.
    runner_up = None
    if result.runner_up is not None:
        runner_id, runner_name, runner_score = result.runner_up
        runner_up = {"supplier_id": runner_id, "supplier_name": runner_name, "score": runner_score}
    return MatchBlock.model_validate(
        {
            "supplier_id": result.supplier_id,
            "supplier_name": result.supplier_name,
            "score": round(result.score, 4),
            "match_type": result.match_type,
            "decision": result.decision,
            "runner_up": runner_up,
            "reason": result.reason,
            "evidence": _evidence(result.evidence),
            "candidates": [
                {
                    "supplier_id": view.supplier_id,
                    "supplier_name": view.supplier_name,
                    "score": view.probability,
                    "city": view.city or None,
                    "state": view.state or None,
                    "evidence": _evidence(view.evidence),
                }
                for view in result.candidates
            ],
        }
    )


def address_block(parsed: ParsedAddress | None) -> AddressBlock | None:
    if parsed is None:
        return None
    return AddressBlock(
        status=parsed.status,
        kind=parsed.kind,
        line1=parsed.line1,
        line2=parsed.line2,
        city=parsed.city,
        state=parsed.state,
        zip5=parsed.zip5,
        zip4=parsed.zip4,
        country=parsed.country,
        attention=parsed.attention,
        one_line=parsed.one_line,
        missing=list(parsed.missing),
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
        organisation_evidence=result.organisation_evidence,
    )


def classification_of(block: ClassificationBlock) -> Classification:
    """The rules' classification back from its event block (the LLM stage refines it)."""
    return Classification(**block.model_dump(exclude={"decision_id"}))


def _matched_supplier_category(
    decided: MatchBlock, matched: Matched, alias: Supplier | None
) -> tuple[str | None, str | None]:
    """Category and code of the supplier the payee is, if it is one (the reviewer's alias first)."""
    if decided.decision != "matched":
        return None, None
    if alias is not None and decided.reason == "reviewer_alias":
        return alias.category or None, alias.code or None
    return matched.supplier_category, matched.supplier_code


MatchKey = tuple[str, tuple[str, ...], str | None, str | None, str | None, str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Matched:
    """The index's match as the steps after it need it: its event block, and the matched
    supplier's category and code (which the classifier reads)."""

    block: MatchBlock
    supplier_category: str | None
    supplier_code: str | None


# A payee recurs on every payment: its match is kept while the index holds the same suppliers.
# Kept as the block's JSON: a block is dozens of small objects, which the cyclic GC would walk on
# every full collection (over 100 ms for a few thousand results); bytes it never looks at, and
# read back into a block in one call.
_MATCH_CACHE_SIZE = 4096
MatcherState = tuple[int, float, float, float, tuple[float, ...]]
_match_caches: weakref.WeakKeyDictionary[
    SupplierIndex, tuple[MatcherState, LruCache[MatchKey, tuple[bytes, str | None, str | None]]]
]
_match_caches = weakref.WeakKeyDictionary()


def matched(
    index: SupplierIndex, record: PayeeRecord, default_state: str | None, default_country: str | None
) -> Matched:
    """The index's match for the record's name, address and place. Cached per index, content and
    parameters: ``index.version`` (a digest of the suppliers held) moves on at every upsert and
    delete, and the thresholds and weights are public attributes (a fit sets the weights)."""
    state = (index.version, index.match_threshold, index.ambiguity_margin, index.review_floor, index.weights)
    kept_state, cache = _match_caches.get(index, (None, None))
    if cache is None or kept_state != state:
        cache = LruCache(_MATCH_CACHE_SIZE)
        _match_caches[index] = (state, cache)
    key = (
        record.payee_name, tuple(record.address_lines), record.city, record.state, record.postal_code,
        record.country, default_state, default_country,
    )
    kept = cache.get(key)
    if kept is not None:
        block_json, category, code = kept
        return Matched(MatchBlock.from_json_bytes(block_json), category, code)
    match = index.match(
        record.payee_name, city=record.city, state=record.state, postal_code=record.postal_code,
        country=record.country, default_state=default_state, default_country=default_country,
        address_lines=record.address_lines,
    )
    block = match_block(match)
    cache.put(key, (block.json_bytes, match.supplier_category, match.supplier_code))
    return Matched(block, match.supplier_category, match.supplier_code)


def enrich(
    record: PayeeRecord,
    index: SupplierIndex,
    source: SourcePosition | None = None,
    replay_run_id: str | None = None,
    default_places: DefaultPlaces = DefaultPlaces(),
    decisions: DecisionLookup | None = None,
) -> Enrichment:
    """Match step then classify step (rules; the supplier's category when matched). Reviewers'
    decisions in ``decisions`` that apply to the payee override the matcher and the rules."""
    fingerprint = record.fingerprint()
    started = time.perf_counter()
    normalized = normalize_name(record.payee_name)
    default_state, default_country = default_places.for_source(record.source_system)
    decided = (
        decisions.find(normalized.key, record.source_system, decision_place(record.state))
        if decisions is not None
        else NO_DECISIONS
    )
    match = matched(index, record, default_state, default_country)
    alias = index.get(decided.match.supplier_id) if decided.match and decided.match.supplier_id else None
    decided_match = apply_match_decision(match.block, decided.match, alias)
    matched_at = time.perf_counter()
    category, code = _matched_supplier_category(decided_match, match, alias)
    classification = classify_payee(record.payee_name, supplier_category=category, supplier_code=code)
    classified_at = time.perf_counter()
    address = address_block(
        parse_address(record.address_lines, record.city, record.state, record.postal_code, record.country)
    )
    addressed_at = time.perf_counter()
    return Enrichment(
        record=record,
        fingerprint=fingerprint,
        correlation_id=correlation_id_for(record, fingerprint),
        normalized_name=normalized.key,
        match=decided_match,
        classification=apply_entity_decision(classification_block(classification), decided.entity),
        timings_ms={
            "match": round((matched_at - started) * 1000, 3),
            "classify": round((classified_at - matched_at) * 1000, 3),
            "address": round((addressed_at - classified_at) * 1000, 3),
        },
        source=source,
        replay_run_id=replay_run_id,
        address=address,
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
    if enrichment.llm_privacy == "withheld":
        reasons.append(PERSONAL_NAME_WITHHELD)
    return reasons


_DOMAIN_ROOT = Path(__file__).resolve().parent
# Shipped data that is not decision logic: the demo's sample supplier list.
_NOT_LOGIC = frozenset({_DOMAIN_ROOT / "data" / "sample_suppliers.csv.gz"})


@functools.cache
def _decision_logic_digest(
    thresholds: Thresholds, match_threshold: float, ambiguity_margin: float, default_places: DefaultPlaces
) -> str:
    """Digest of everything that decides a result besides the input, the supplier index and
    reviewers' decisions: the domain code and its data (normalisation, matching weights,
    classification rules), the thresholds and the default places of the sources (match
    evidence). A change to any of them changes the rules version of reprocessed records."""
    settings = (thresholds, match_threshold, ambiguity_margin, default_places)
    digest = hashlib.blake2b(repr(settings).encode(), digest_size=4)
    for path in sorted(_DOMAIN_ROOT.rglob("*")):
        if path.is_file() and path.suffix != ".pyc" and path not in _NOT_LOGIC:
            digest.update(path.relative_to(_DOMAIN_ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def current_versions(
    index: SupplierIndex,
    pipeline_version: str,
    thresholds: Thresholds,
    default_places: DefaultPlaces = DefaultPlaces(),
) -> Versions:
    logic = _decision_logic_digest(thresholds, index.match_threshold, index.ambiguity_margin, default_places)
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
        address=enrichment.address,
        enrichment=enrichment.merchant,
        versions=versions,
        timings_ms=enrichment.timings_ms,
        source=source,
        replay_run_id=enrichment.replay_run_id,
        processed_at=datetime.now(UTC),
        llm_privacy=enrichment.llm_privacy,
    )


def result_version(fingerprint: str, enrichment: Enrichment, status: str, reasons: list[str]) -> str:
    """Digest of what was decided about the input: changes exactly when the outcome does.
    (The blocks serialise their fields in declaration order, so their JSON is canonical.)"""
    digest = hashlib.blake2b(digest_size=8)
    for part in (fingerprint, enrichment.normalized_name, status, *reasons):
        digest.update(part.encode())
        digest.update(b"\x1f")
    digest.update(enrichment.match.json_bytes)
    digest.update(enrichment.classification.model_dump_json().encode())
    digest.update((enrichment.address.model_dump_json() if enrichment.address else "").encode())
    # The provider's answer, not how long it took.
    merchant = enrichment.merchant.model_dump_json(exclude={"elapsed_ms"}) if enrichment.merchant else ""
    digest.update(merchant.encode())
    digest.update((enrichment.llm_privacy or "").encode())
    return digest.hexdigest()
