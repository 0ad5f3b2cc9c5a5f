"""Shared by the review console tests: real results from the fixture suppliers."""

from __future__ import annotations

from decimal import Decimal

from domain.decisions import DecisionLookup
from domain.matching import SupplierIndex
from domain.pipeline import Thresholds, build_result, current_versions, enrich
from domain.suppliers import Supplier, read_suppliers_csv
from schemas.events import EnrichedPayee, PayeeRecord
from tests.conftest import FIXTURE_SUPPLIERS

THRESHOLDS = Thresholds(review=0.75, llm=0.70)
# Many suppliers of this name in the fixture: without a place, the match is ambiguous.
AMBIGUOUS_NAME = "AMERICAN LEGION"


def fixture_index() -> SupplierIndex:
    index = SupplierIndex(match_threshold=0.85, ambiguity_margin=0.05)
    for row in read_suppliers_csv(FIXTURE_SUPPLIERS):
        if isinstance(row, Supplier):
            index.upsert(row)
    return index


def payee(record_id: str, name: str = AMBIGUOUS_NAME, amount: str | None = "100", source: str = "ap-east",
          state: str | None = "AK") -> PayeeRecord:
    return PayeeRecord(
        source_system=source,
        source_record_id=record_id,
        payee_name=name,
        state=state,
        amount=Decimal(amount) if amount is not None else None,
        currency="USD" if amount is not None else None,
    )


def result_for(record: PayeeRecord, index: SupplierIndex, decisions: DecisionLookup | None = None) -> EnrichedPayee:
    enrichment = enrich(record, index, decisions=decisions)
    return build_result(enrichment, current_versions(index, "test", THRESHOLDS), THRESHOLDS)
