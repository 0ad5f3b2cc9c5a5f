"""What the sink writes for the review console: queue items from ``payees.review`` and the
searchable supplier directory from the ``suppliers`` topic."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from domain.address import registered_place
from domain.decisions import decision_place, review_priority, review_uncertainty
from domain.suppliers import supplier_from_dict
from schemas.events import EnrichedPayee


class ReviewItemRow(NamedTuple):
    record_key: str
    event_id: uuid.UUID
    result_version: str
    order_key: int
    normalized_name: str
    source_system: str
    place: str | None
    amount: Decimal | None
    currency: str | None
    reasons: str  # JSON array: unnest cannot take an array of arrays
    uncertainty: float
    priority: float
    result: str
    processed_at: datetime


class SupplierRow(NamedTuple):
    supplier_id: str
    name: str
    alt_name: str | None
    city: str | None
    state: str | None
    category: str | None


def review_item_row(
    event: EnrichedPayee, result_json: str, processed_at: datetime, default_amount: float
) -> ReviewItemRow:
    return ReviewItemRow(
        record_key=event.record_key,
        event_id=uuid.UUID(event.event_id),
        result_version=event.result_version,
        order_key=event.order_key,
        normalized_name=event.normalized_name,
        source_system=event.input.source_system,
        place=decision_place(event.input.state),
        amount=event.input.amount,
        currency=event.input.currency,
        reasons=json.dumps(event.review_reasons),
        uncertainty=review_uncertainty(event),
        priority=review_priority(event, default_amount),
        result=result_json,
        processed_at=processed_at,
    )


def supplier_row(value: bytes) -> SupplierRow:
    """Raises ValueError, KeyError or TypeError when the value is not a supplier."""
    supplier = supplier_from_dict(json.loads(value))
    place = registered_place(supplier)  # a registry row's town is in its address: as the matcher reads it
    return SupplierRow(
        supplier_id=supplier.supplier_id,
        name=supplier.name,
        alt_name=supplier.alt_name or None,
        city=place.city or None,
        state=place.state or None,
        category=supplier.category or None,
    )


# A newer review result for a record replaces its item and reopens it; a redelivery of the same
# or an older one changes nothing. Newer means a higher order key (the source offset, README
# "Delivery guarantees"), then, for one source record processed twice with a different outcome,
# the later processing: as for payee_results. DISTINCT ON: a command may not update a row twice.
UPSERT_REVIEW_ITEMS_SQL = """
INSERT INTO review_items (record_key, event_id, result_version, order_key, normalized_name, source_system,
                          place, amount, currency, reasons, uncertainty, priority, result, processed_at)
SELECT DISTINCT ON (record_key)
       record_key, event_id, result_version, order_key, normalized_name, source_system, place, amount,
       currency, ARRAY(SELECT jsonb_array_elements_text(reasons)), uncertainty, priority, result, processed_at
FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::text[], $7::text[],
            $8::numeric[], $9::text[], $10::jsonb[], $11::float8[], $12::float8[], $13::jsonb[],
            $14::timestamptz[])
    AS r(record_key, event_id, result_version, order_key, normalized_name, source_system, place, amount,
         currency, reasons, uncertainty, priority, result, processed_at)
ORDER BY record_key, order_key DESC, processed_at DESC, event_id DESC
ON CONFLICT (record_key) DO UPDATE
SET event_id = excluded.event_id, result_version = excluded.result_version, order_key = excluded.order_key,
    normalized_name = excluded.normalized_name,
    source_system = excluded.source_system, place = excluded.place, amount = excluded.amount,
    currency = excluded.currency, reasons = excluded.reasons, uncertainty = excluded.uncertainty,
    priority = excluded.priority, result = excluded.result, processed_at = excluded.processed_at,
    queued_at = CASE WHEN review_items.status = 'open' THEN review_items.queued_at ELSE now() END,
    status = 'open', resolution = NULL, decision_id = NULL, resolved_by = NULL, resolved_at = NULL
WHERE excluded.order_key > review_items.order_key
   OR (excluded.order_key = review_items.order_key
       AND excluded.processed_at > review_items.processed_at
       AND (excluded.event_id, excluded.result_version)
           <> (review_items.event_id, review_items.result_version))
"""

# A newer result that needs no review (the record reprocessed, say after a decision) settles
# the record's open item; newer in the same order as above.
RESOLVE_BY_RESULTS_SQL = """
UPDATE review_items AS item
SET status = 'resolved', resolution = 'reprocessed', decision_id = r.decision_id,
    resolved_at = now()
FROM unnest($1::text[], $2::int8[], $3::timestamptz[], $4::uuid[])
    AS r(record_key, order_key, processed_at, decision_id)
WHERE item.status = 'open' AND item.record_key = r.record_key
  AND (item.order_key < r.order_key OR (item.order_key = r.order_key AND item.processed_at < r.processed_at))
"""

UPSERT_SUPPLIERS_SQL = """
INSERT INTO supplier_directory (supplier_id, name, alt_name, city, state, category)
SELECT DISTINCT ON (supplier_id) *
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
    AS s(supplier_id, name, alt_name, city, state, category)
ON CONFLICT (supplier_id) DO UPDATE
SET name = excluded.name, alt_name = excluded.alt_name, city = excluded.city,
    state = excluded.state, category = excluded.category, updated_at = now()
"""

DELETE_SUPPLIERS_SQL = "DELETE FROM supplier_directory WHERE supplier_id = ANY($1::text[])"
