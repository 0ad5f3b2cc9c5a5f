"""Batch mode: the agents' core over a CSV file, without Kafka (files and evaluation)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from pydantic import ValidationError

from domain.matching import SupplierIndex, freeze_built_index
from domain.pipeline import enrich
from domain.suppliers import RowError, read_suppliers_csv
from schemas.events import PayeeRecord


class ProgressBar(Protocol):
    def update(self, n: int = 1) -> Any: ...


ProgressFactory = Callable[[int | None, str], AbstractContextManager[ProgressBar]]


def build_index(
    suppliers_path: Path, match_threshold: float, ambiguity_margin: float, progress: ProgressFactory
) -> SupplierIndex:
    index = SupplierIndex(match_threshold=match_threshold, ambiguity_margin=ambiguity_margin)
    with progress(None, "index") as bar:
        for row in read_suppliers_csv(suppliers_path):
            if not isinstance(row, RowError):
                index.upsert(row)
            bar.update()
    freeze_built_index()
    return index


def batch_row(row: dict[str, str], index: SupplierIndex) -> dict[str, object]:
    row_id = row.get("id", "")
    try:
        record = PayeeRecord(
            source_system="batch",
            source_record_id=row_id or "-",
            payee_name=row.get("name") or "",
            address_lines=[row["address"]] if row.get("address") else [],
            city=row.get("city") or None,
            state=row.get("state") or None,
            postal_code=row.get("postal_code") or None,
        )
    except ValidationError as exc:
        return {
            "id": row_id,
            "error": "; ".join(err["msg"] for err in exc.errors()),
            "entity_type": "unknown",
            "confidence": 0.0,
            "match": {"supplier_id": None, "score": 0.0, "match_type": "none"},
        }
    enrichment = enrich(record, index)
    classification, match = enrichment.classification, enrichment.match
    return {
        "id": row_id,
        "normalized_name": enrichment.normalized_name,
        "entity_type": classification.entity_type,
        "subtype": classification.subtype,
        "sic_code": classification.sic_code,
        "confidence": classification.confidence,
        "classification_method": classification.method,
        "classification_reason": classification.reason,
        "match": {
            "supplier_id": match.supplier_id if match.decision == "matched" else None,
            "supplier_name": match.supplier_name if match.decision == "matched" else None,
            "score": match.score,
            "match_type": match.match_type if match.decision == "matched" else "none",
            "decision": match.decision,
            "candidate_id": match.supplier_id,
            "runner_up": match.runner_up.model_dump() if match.runner_up else None,
            "reason": match.reason,
        },
    }


def run_batch(
    input_path: Path,
    suppliers_path: Path,
    output_path: Path,
    match_threshold: float,
    ambiguity_margin: float,
    progress: ProgressFactory,
) -> dict[str, object]:
    index = build_index(suppliers_path, match_threshold, ambiguity_margin, progress)
    with input_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    outcomes: Counter[str] = Counter()
    with output_path.open("w", encoding="utf-8") as out, progress(len(rows), "payees") as bar:
        for row in rows:
            result = batch_row(row, index)
            outcomes["error" if "error" in result else str(result["match"]["decision"])] += 1  # type: ignore[index]
            out.write(json.dumps(result) + "\n")
            bar.update()
    return {"rows": len(rows), "suppliers": len(index), **outcomes}
