"""Batch mode: the agents' core over a payee file, without Kafka (files and evaluation).

Rows stream from the input (CSV, XLSX, JSON lines) to the output (CSV, XLSX or JSON lines by
extension) one at a time: memory is the supplier index plus one row, whatever the file's length.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from domain.matching import DefaultPlaces, SupplierIndex, freeze_built_index
from domain.payee_files import PayeeRows, iter_payloads, open_jsonl_writer, open_payee_rows, open_writer, output_format
from domain.pipeline import Enrichment, Thresholds, enrich, review_reasons
from domain.suppliers import RowError, Supplier, read_suppliers_csv
from schemas.events import PayeeRecord


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> Any: ...


ProgressFactory = Callable[[int | None, str], AbstractContextManager[ProgressBar]]

# Appended after every original column of a CSV / XLSX output, in this order.
RESULT_COLUMNS = (
    "matched_supplier_id",
    "matched_supplier_name",
    "match_score",
    "match_decision",
    "entity_type",
    "subtype",
    "sic_code",
    "confidence",
    "status",
    "review_reasons",
    "address_standardized",
    "address_status",
    "error",
)
# Prefix for a result column whose name the input already uses.
RESULT_PREFIX = "payee_stream_"


def build_index(
    suppliers_path: Path, match_threshold: float, ambiguity_margin: float, progress: ProgressFactory
) -> SupplierIndex:
    index = SupplierIndex(match_threshold=match_threshold, ambiguity_margin=ambiguity_margin)
    with progress(None, "index") as bar:

        def suppliers() -> Iterator[Supplier]:
            for row in read_suppliers_csv(suppliers_path):
                if not isinstance(row, RowError):
                    yield row
                bar.update()

        index.upsert_many(suppliers())
    freeze_built_index()
    return index


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One input row processed: its enrichment and review reasons, or why it could not be."""

    record_id: str
    enrichment: Enrichment | None
    reasons: tuple[str, ...]
    error: str | None

    @property
    def status(self) -> str:
        if self.enrichment is None:
            return "error"
        return "review" if self.reasons else "enriched"


def process_payload(
    payload: dict[str, Any] | str,
    index: SupplierIndex,
    thresholds: Thresholds,
    default_places: DefaultPlaces = DefaultPlaces(),
) -> BatchOutcome:
    """Validate → match → classify (rules) → decide, for one row's record payload."""
    if isinstance(payload, str):
        return BatchOutcome("", None, (), payload)
    record_id = str(payload.get("source_record_id", ""))
    try:
        record = PayeeRecord.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors())
        return BatchOutcome(record_id, None, (), problems)
    enrichment = enrich(record, index, default_places=default_places)
    return BatchOutcome(record_id, enrichment, tuple(review_reasons(enrichment, thresholds)), None)


def result_values(outcome: BatchOutcome) -> list[Any]:
    """The ``RESULT_COLUMNS`` values of one outcome."""
    if outcome.enrichment is None:
        return [None, None, 0.0, "none", "unknown", None, None, 0.0, "error", "", None, None, outcome.error]
    match, classification = outcome.enrichment.match, outcome.enrichment.classification
    address = outcome.enrichment.address
    matched = match.decision == "matched"
    return [
        match.supplier_id if matched else None,
        match.supplier_name if matched else None,
        match.score,
        match.decision,
        classification.entity_type,
        classification.subtype,
        classification.sic_code,
        classification.confidence,
        outcome.status,
        ";".join(outcome.reasons),
        address.one_line if address else None,
        address.status if address else None,
        None,
    ]


def result_object(outcome: BatchOutcome) -> dict[str, object]:
    """One outcome as a JSON lines object."""
    if outcome.enrichment is None:
        return {
            "id": outcome.record_id,
            "error": outcome.error,
            "status": "error",
            "entity_type": "unknown",
            "confidence": 0.0,
            "match": {"supplier_id": None, "score": 0.0, "match_type": "none", "decision": "none"},
        }
    enrichment = outcome.enrichment
    classification, match = enrichment.classification, enrichment.match
    matched = match.decision == "matched"
    return {
        "id": outcome.record_id,
        "normalized_name": enrichment.normalized_name,
        "status": outcome.status,
        "review_reasons": list(outcome.reasons),
        "entity_type": classification.entity_type,
        "subtype": classification.subtype,
        "sic_code": classification.sic_code,
        "confidence": classification.confidence,
        "classification_method": classification.method,
        "classification_reason": classification.reason,
        "match": {
            "supplier_id": match.supplier_id if matched else None,
            "supplier_name": match.supplier_name if matched else None,
            "score": match.score,
            "match_type": match.match_type if matched else "none",
            "decision": match.decision,
            "candidate_id": match.supplier_id,
            "runner_up": match.runner_up.model_dump() if match.runner_up else None,
            "reason": match.reason,
        },
        "address": enrichment.address.model_dump() if enrichment.address else None,
    }


def output_columns(input_columns: Sequence[str]) -> list[str]:
    """Every input column, then the result columns (prefixed where a name is taken)."""
    taken = set(input_columns)
    return list(input_columns) + [RESULT_PREFIX + name if name in taken else name for name in RESULT_COLUMNS]


def run_batch(
    input_path: Path,
    suppliers_path: Path,
    output_path: Path,
    match_threshold: float,
    ambiguity_margin: float,
    thresholds: Thresholds,
    progress: ProgressFactory,
    column_overrides: Sequence[str] = (),
    sheet: str | None = None,
    source_system: str = "batch",
    announce: Callable[[str], None] = lambda _: None,
    default_places: DefaultPlaces = DefaultPlaces(),
) -> dict[str, object]:
    """Raises ``PayeeFileError`` for an unreadable input or output before the index is built."""
    kind = output_format(output_path)
    rows = open_payee_rows(input_path, column_overrides, sheet)
    announce(rows.describe())
    started = time.perf_counter()
    index = build_index(suppliers_path, match_threshold, ambiguity_margin, progress)
    built = time.perf_counter()
    counts = _process_rows(rows, index, thresholds, default_places, output_path, kind, source_system, progress)
    finished = time.perf_counter()
    announce(f"wrote {output_path}")
    processed = sum(counts.values())
    return {
        "rows": processed,
        "suppliers": len(index),
        **counts,
        "index_build_s": round(built - started, 1),
        "rows_s": round(finished - built, 1),
        "rows_per_s": round(processed / max(finished - built, 1e-9), 1),
    }


def _process_rows(
    rows: PayeeRows,
    index: SupplierIndex,
    thresholds: Thresholds,
    default_places: DefaultPlaces,
    output_path: Path,
    kind: str,
    source_system: str,
    progress: ProgressFactory,
) -> Counter[str]:
    counts: Counter[str] = Counter()
    outcomes = (
        (row, process_payload(payload, index, thresholds, default_places))
        for row, payload in iter_payloads(rows, source_system)
    )
    columns = rows.table.columns
    with progress(rows.table.estimated_rows, "payees") as bar:
        if kind == "jsonl":
            with open_jsonl_writer(output_path) as write_object:
                for _, outcome in outcomes:
                    write_object(result_object(outcome))
                    counts[_outcome_key(outcome)] += 1
                    bar.update()
        else:
            with open_writer(output_path, output_columns(columns)) as writer:
                for row, outcome in outcomes:
                    writer.write([row.get(column) for column in columns] + result_values(outcome))
                    counts[_outcome_key(outcome)] += 1
                    bar.update()
    return counts


def _outcome_key(outcome: BatchOutcome) -> str:
    return "error" if outcome.enrichment is None else outcome.enrichment.match.decision
