"""Event models on every topic. Consumers get these as JSON Schema (`payee-stream schemas export`).

Identity and order contract (README, "Topics and events"):

* ``event_id`` is the delivery id: derived from the source record's position (topic, partition,
  offset) and the replay run id, never from the supplier index or the rules. A record
  redelivered after a crash gets the same ids however much the index changed meanwhile, so
  consumers de-duplicate by ``event_id``.
* ``result_version`` is a digest of what was decided (match, classification, status, review
  reasons). It changes whenever the outcome changes, so an upsert by record takes a repaired
  result (a degraded result replayed once the LLM is back, a redelivery after a supplier upsert).
* ``order_key`` is the source offset on ``payees.raw``. Records of one ``record_key`` share a
  partition, so among results for one record the highest ``order_key`` is the newest; equal
  order keys are the same source record, where the later ``processed_at`` wins.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Version 2: delivery ids from the source position, result versions, order keys, one audit event
# per record listing its decisions, size-bounded dead letters.
SCHEMA_VERSION = 2
NAME_MAX_LENGTH = 300
# Fixed namespace so ids are stable across processes and releases.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c3a52-8a0e-4c47-9b3e-2f7d0c5b9a11")

MetadataValue = str | int | float | bool | None


_NAMESPACE_SHA1 = hashlib.sha1(EVENT_ID_NAMESPACE.bytes, usedforsecurity=False)


def deterministic_id(*parts: str) -> str:
    """``str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts)))``, without building a UUID
    object: three of these per record are a measurable share of the core's time."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update("\x1f".join(parts).encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def delivery_id(kind: str, source: SourcePosition, replay_run_id: str | None) -> str:
    """The id of the ``kind`` output of one source record in one run (see the module docstring)."""
    return deterministic_id(
        "delivery", kind, source.topic, str(source.partition), str(source.offset), replay_run_id or ""
    )


class PayeeRecord(BaseModel):
    """A payee as an upstream payment system publishes it to ``payees.raw``."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    schema_version: Literal[1] = 1
    source_system: str = Field(min_length=1, max_length=100)
    source_record_id: str = Field(min_length=1, max_length=200)
    payee_name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    address_lines: list[str] = Field(default_factory=list, max_length=5)
    city: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=50)
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=60)
    amount: Decimal | None = Field(default=None, max_digits=20, decimal_places=4)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    payment_date: date | None = None
    metadata: dict[str, MetadataValue] = Field(default_factory=dict, max_length=50)

    @field_validator("payee_name")
    @classmethod
    def _name_has_letters_or_digits(cls, value: str) -> str:
        if not any(ch.isalnum() for ch in value):
            raise ValueError("payee_name has no letters or digits")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("payee_name contains control characters")
        return value

    @field_validator("address_lines")
    @classmethod
    def _address_lines_are_short(cls, lines: list[str]) -> list[str]:
        if any(len(line) > 200 for line in lines):
            raise ValueError("address line longer than 200 characters")
        return lines

    @property
    def record_key(self) -> str:
        """Kafka key: keeps one payee's records on one partition, in order."""
        return f"{self.source_system}:{self.source_record_id}"

    def fingerprint(self) -> str:
        """Digest of the canonical content, independent of field order and whitespace."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Versions(BaseModel):
    model_config = ConfigDict(frozen=True)

    pipeline: str
    rules: str
    index: str


class SourcePosition(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int


class RunnerUp(BaseModel):
    model_config = ConfigDict(frozen=True)

    supplier_id: str
    supplier_name: str
    score: float


class MatchEvidence(BaseModel):
    """One piece of evidence behind a match decision: what was compared, what it showed and how
    much it moved the score (log-odds contribution; positive for, negative against)."""

    model_config = ConfigDict(frozen=True)

    feature: str
    value: str | float | bool | None
    contribution: float


class MatchCandidate(BaseModel):
    """A supplier the matcher weighed, best first; reviewers pick among these."""

    model_config = ConfigDict(frozen=True)

    supplier_id: str
    supplier_name: str
    score: float = Field(ge=0, le=1)
    city: str | None = None
    state: str | None = None
    evidence: list[MatchEvidence] = Field(default_factory=list)


MatchMethod = Literal["matcher", "reviewer"]


class MatchBlock(BaseModel):
    model_config = ConfigDict(frozen=True)

    supplier_id: str | None
    supplier_name: str | None
    score: float = Field(ge=0, le=1)
    match_type: Literal["exact", "fuzzy", "none"]
    decision: Literal["matched", "ambiguous", "none"]
    runner_up: RunnerUp | None = None
    reason: str
    # Why: the evidence for the chosen (or best) candidate, and the candidates weighed.
    evidence: list[MatchEvidence] = Field(default_factory=list)
    candidates: list[MatchCandidate] = Field(default_factory=list)
    # "reviewer" when a reviewer's decision (``decision_id``) settled the match.
    method: MatchMethod = "matcher"
    decision_id: str | None = None

    @classmethod
    def from_json_bytes(cls, raw: bytes) -> MatchBlock:
        """The block whose ``json_bytes`` these are."""
        block = cls.model_validate_json(raw)
        block.__dict__["json_bytes"] = raw
        return block

    @functools.cached_property
    def json_bytes(self) -> bytes:
        """``model_dump_json().encode()``, serialised once: the block is immutable, and the largest
        part of a result. (Not a field: kept out of dumps and comparisons.)"""
        return self.model_dump_json().encode()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy.__dict__.pop("json_bytes", None)  # the copy's fields may differ: serialised anew
        return copy


EntityType = Literal["individual", "business", "government", "unknown"]
ClassificationMethod = Literal["rules", "model", "supplier", "llm", "degraded", "reviewer"]


class ClassificationBlock(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity_type: EntityType
    subtype: str | None = None
    sic_code: str | None = Field(default=None, pattern=r"^\d{4}$")
    sic_description: str | None = None
    confidence: float = Field(ge=0, le=1)
    method: ClassificationMethod
    reason: str
    # The rules found an organisation or government in the name (legal form, organisation or
    # government words, a known brand) or in the matched supplier; false for a guess from the name's
    # shape or word statistics, and for the LLM's and a reviewer's results. Under strict LLM privacy
    # only such records may go to the LLM (domain/privacy.py).
    organisation_evidence: bool = False
    # Set when a reviewer's decision settled the entity type (method "reviewer").
    decision_id: str | None = None


AddressStatus = Literal["standardized", "partial", "foreign", "unparsed"]


class AddressBlock(BaseModel):
    """The payee's address, parsed and normalised to USPS Publication 28 forms.

    ``status``: ``standardized`` (a US street or PO box address with city, state and ZIP),
    ``partial`` (US, some part missing or read loosely; ``missing`` names what), ``foreign``
    (passed through, cleaned), ``unparsed`` (nothing recognisable). Absent when the record has no
    address at all."""

    model_config = ConfigDict(frozen=True)

    status: AddressStatus
    kind: Literal["street", "po_box"] | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    zip5: str | None = None
    zip4: str | None = None
    country: str | None = None
    attention: str | None = None
    one_line: str | None = None
    missing: list[str] = Field(default_factory=list)


EnrichmentStatus = Literal["found", "not_found", "unavailable"]


class EnrichmentBlock(BaseModel):
    """Merchant data from an external provider, for business payees only (never individuals).

    ``status``: ``found`` (the provider knows the merchant), ``not_found``, or ``unavailable``
    (the provider failed, timed out or its breaker was open; ``reason`` says which). Absent when
    no provider is configured or the payee is not a business the policy allows."""

    model_config = ConfigDict(frozen=True)

    provider: str
    status: EnrichmentStatus
    reason: str | None = None
    merchant_name: str | None = None
    merchant_id: str | None = None
    mcc: str | None = Field(default=None, pattern=r"^\d{4}$")
    mcc_description: str | None = None
    accepts_cards: bool | None = None
    level2: bool | None = None
    level3: bool | None = None
    last_active: date | None = None
    recency: Literal["last_30_days", "last_90_days", "last_year", "over_a_year"] | None = None
    match_confidence: float | None = Field(default=None, ge=0, le=1)
    elapsed_ms: float | None = None


ResultStatus = Literal["enriched", "review"]


class EnrichedPayee(BaseModel):
    """Published to ``payees.enriched`` (and, when status is review, also to ``payees.review``)."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[2] = SCHEMA_VERSION
    event_id: str
    result_version: str
    order_key: int
    correlation_id: str
    record_key: str
    record_fingerprint: str
    input: PayeeRecord
    normalized_name: str
    match: MatchBlock
    classification: ClassificationBlock
    status: ResultStatus
    review_reasons: list[str] = Field(default_factory=list)
    address: AddressBlock | None = None
    enrichment: EnrichmentBlock | None = None
    versions: Versions
    timings_ms: dict[str, float] = Field(default_factory=dict)
    source: SourcePosition | None = None
    replay_run_id: str | None = None
    processed_at: datetime
    # A possibly personal name that needed the LLM: "withheld" from it (strict privacy, the record
    # goes to review) or "disclosed" to it (permissive); None otherwise. See domain/privacy.py.
    llm_privacy: Literal["withheld", "disclosed"] | None = None

    @staticmethod
    def make_event_id(source: SourcePosition, replay_run_id: str | None) -> str:
        return delivery_id("enriched", source, replay_run_id)


AuditAction = Literal[
    "received",
    "rejected",
    "matched",
    "classified",
    "sent_to_llm",
    "degraded",
    "merchant_enriched",
    "sent_to_review",
    "emitted",
    "replayed",
]


class AuditDecision(BaseModel):
    """One decision taken on a record. Carries no payee name: ids and outcomes only."""

    model_config = ConfigDict(frozen=True)

    action: AuditAction
    stage: str
    outcome: dict[str, Any] = Field(default_factory=dict)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class AuditEvent(BaseModel):
    """Every decision taken on one record, in order, on ``payees.audit``. Carries no payee name."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[2] = SCHEMA_VERSION
    event_id: str
    correlation_id: str
    record_key: str | None
    decisions: list[AuditDecision]
    versions: Versions
    order_key: int
    result_event_id: str | None = None
    result_version: str | None = None
    dead_letter_event_id: str | None = None
    replay_run_id: str | None = None
    occurred_at: datetime

    @staticmethod
    def make_event_id(source: SourcePosition, replay_run_id: str | None) -> str:
        return delivery_id("audit", source, replay_run_id)


class DeadLetter(BaseModel):
    """On ``payees.dlq``: the original bytes (base64) and why they were rejected.

    The original is kept whole when it fits the message size limit; otherwise a prefix
    (``original_truncated``), always with the full ``original_size`` and ``original_sha256``.
    Dead letters of the LLM stage hold the raw payee record, so they can be replayed."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[2] = SCHEMA_VERSION
    event_id: str
    correlation_id: str
    stage: str
    error_type: str
    error_message: str
    source_topic: str
    source_partition: int
    source_offset: int
    original_key_b64: str | None
    original_value_b64: str
    original_size: int
    original_sha256: str
    original_truncated: bool = False
    order_key: int
    replay_run_id: str | None = None
    occurred_at: datetime

    @staticmethod
    def make_event_id(source: SourcePosition, replay_run_id: str | None) -> str:
        return delivery_id("dlq", source, replay_run_id)


EVENT_MODELS: dict[str, type[BaseModel]] = {
    "payee_record": PayeeRecord,
    "enriched_payee": EnrichedPayee,
    "audit_event": AuditEvent,
    "dead_letter": DeadLetter,
}
