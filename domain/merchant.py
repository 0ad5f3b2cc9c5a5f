"""Merchant data from an external provider (of the kind of Mastercard Track Search): card
acceptance, merchant category code, level 2 / 3 data, how recently the merchant was active.

The core is pure: who may be looked up (``merchant_lookup_allowed``: business payees only, never
individuals — the providers' terms say so, and a person's name must not leave the company for
it), what is asked (``merchant_query``), what the result carries (``enrichment_block``) and the
whole step for a batch (``enrich_batch``: records in, records with their ``enrichment`` block out,
the provider called once for those allowed; its call is the only effect). A provider is anything with ``lookup``
(``MerchantProvider``); ``domain/merchant_http.py`` is the HTTP one, behind the same guard rails
as the LLM client. The stage's outcomes (results, dead letters) are made by
``domain.outcome.merchant_stage_outcomes``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from domain.pipeline import Enrichment
from schemas.events import ClassificationBlock, EnrichmentBlock

# Merchant category codes are four digits (ISO 18245).
MCC_LENGTH = 4


@dataclass(frozen=True, slots=True)
class MerchantPolicy:
    """Which results are worth a lookup: business payees the classifier is this sure of."""

    min_confidence: float = 0.8


def merchant_lookup_allowed(classification: ClassificationBlock, policy: MerchantPolicy) -> bool:
    """True only for a payee classified as a business with at least the policy's confidence.

    Individuals never; nor payees of unknown type (they may be people), governments (not
    merchants to a card network), or degraded classifications (the LLM was unavailable, the
    type is a guess)."""
    return (
        classification.entity_type == "business"
        and classification.method != "degraded"
        and classification.confidence >= policy.min_confidence
    )


@dataclass(frozen=True, slots=True)
class MerchantQuery:
    """What a provider is asked: the business's name and where it is."""

    reference: str  # echoed back by the provider to pair answers with questions
    name: str
    street: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None

    @property
    def cache_key(self) -> tuple[str | None, ...]:
        return (" ".join(self.name.upper().split()), self.street, self.city, self.state, self.postal_code)


@dataclass(frozen=True, slots=True)
class MerchantData:
    """A provider's answer for one query; ``found`` False when it knows no such merchant."""

    found: bool
    merchant_name: str | None = None
    merchant_id: str | None = None
    mcc: str | None = None
    mcc_description: str | None = None
    accepts_cards: bool | None = None
    level2: bool | None = None
    level3: bool | None = None
    last_active: date | None = None
    match_confidence: float | None = None


@dataclass(frozen=True, slots=True)
class LookupFailure:
    """No answer: the provider failed, timed out, or its breaker is open."""

    reason: str


LookupOutcome = MerchantData | LookupFailure


class MerchantProvider(Protocol):
    name: str

    async def lookup(self, queries: Sequence[MerchantQuery]) -> list[LookupOutcome]:
        """One outcome per query, in order; never raises for the provider's failures."""
        ...


def needs_merchant_data(enrichment: Enrichment, policy: MerchantPolicy) -> bool:
    return merchant_lookup_allowed(enrichment.classification, policy)


def query_for(enrichment: Enrichment, reference: str) -> MerchantQuery:
    """The provider query of a record: its name, and its address as normalised where it parsed."""
    record, address = enrichment.record, enrichment.address
    street = address.line1 if address and address.line1 else (record.address_lines[0] if record.address_lines else None)
    return MerchantQuery(
        reference=reference,
        name=record.payee_name,
        street=street,
        city=(address.city if address else None) or record.city,
        state=(address.state if address else None) or record.state,
        postal_code=(address.zip5 if address else None) or record.postal_code,
        country=(address.country if address else None) or record.country,
    )


def recency(last_active: date | None, today: date) -> str | None:
    """How recently the merchant took a card payment, in the buckets a payments team uses."""
    if last_active is None:
        return None
    days = (today - last_active).days
    if days <= 30:
        return "last_30_days"
    if days <= 90:
        return "last_90_days"
    if days <= 365:
        return "last_year"
    return "over_a_year"


def enrichment_block(provider: str, outcome: LookupOutcome, today: date, elapsed_ms: float) -> EnrichmentBlock:
    if isinstance(outcome, LookupFailure):
        return EnrichmentBlock(provider=provider, status="unavailable", reason=outcome.reason, elapsed_ms=elapsed_ms)
    if not outcome.found:
        return EnrichmentBlock(provider=provider, status="not_found", elapsed_ms=elapsed_ms)
    mcc = outcome.mcc if outcome.mcc and outcome.mcc.isdigit() and len(outcome.mcc) == MCC_LENGTH else None
    return EnrichmentBlock(
        provider=provider,
        status="found",
        merchant_name=outcome.merchant_name,
        merchant_id=outcome.merchant_id,
        mcc=mcc,
        mcc_description=outcome.mcc_description if mcc else None,
        accepts_cards=outcome.accepts_cards,
        level2=outcome.level2,
        level3=outcome.level3,
        last_active=outcome.last_active,
        recency=recency(outcome.last_active, today),
        match_confidence=outcome.match_confidence,
        elapsed_ms=elapsed_ms,
    )


async def lookup_blocks(
    provider: MerchantProvider, queries: Sequence[MerchantQuery], today: date
) -> list[EnrichmentBlock]:
    """One provider call for the batch; every query gets a block, whatever the provider does."""
    if not queries:
        return []
    started = time.perf_counter()
    try:
        outcomes = await provider.lookup(queries)
    except Exception as error:  # a provider implementation bug must not lose the batch's records
        outcomes = [LookupFailure(f"provider error {type(error).__name__}")] * len(queries)
    if len(outcomes) != len(queries):
        outcomes = [LookupFailure("provider answered a different number of queries")] * len(queries)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    return [enrichment_block(provider.name, outcome, today, elapsed_ms) for outcome in outcomes]


async def enrich_batch(
    enrichments: Sequence[Enrichment], provider: MerchantProvider, policy: MerchantPolicy, today: date
) -> list[Enrichment]:
    """The merchant step for a batch: the records the policy allows get the provider's answer in
    their ``merchant`` block (one provider call for all of them); the others come back unchanged."""
    allowed = [i for i, enrichment in enumerate(enrichments) if needs_merchant_data(enrichment, policy)]
    blocks = await lookup_blocks(provider, [query_for(enrichments[i], str(i)) for i in allowed], today)
    enriched = list(enrichments)
    for i, block in zip(allowed, blocks, strict=True):
        enriched[i] = enriched[i].with_merchant(block)
    return enriched
