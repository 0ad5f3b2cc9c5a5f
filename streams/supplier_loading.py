"""Publishing suppliers to the compacted ``suppliers`` topic, keyed by supplier id."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from domain.suppliers import RowError, Supplier, read_suppliers_csv, supplier_to_dict
from streams.kafka_io import OutgoingRecord, ensure_topics, kafka_producer, publish
from streams.settings import Settings


@dataclass
class LoadReport:
    published: int = 0
    errors: list[RowError] = field(default_factory=list)

    def summary(self) -> str:
        return f"published {self.published} suppliers, rejected {len(self.errors)} rows"


def supplier_record(supplier: Supplier) -> OutgoingRecord:
    return OutgoingRecord(
        key=supplier.supplier_id.encode(),
        value=json.dumps(supplier_to_dict(supplier), separators=(",", ":")).encode(),
    )


def tombstone(supplier_id: str) -> OutgoingRecord:
    return OutgoingRecord(key=supplier_id.encode(), value=None)


async def publish_supplier_records(settings: Settings, records: Iterable[OutgoingRecord], total: int | None) -> int:
    await ensure_topics(settings)
    async with kafka_producer(settings) as producer:
        with tqdm(total=total, desc=f"→ {settings.topic_suppliers}", unit="sup", file=sys.stderr) as bar:
            return await publish(producer, settings.topic_suppliers, records, on_sent=bar.update)


async def load_supplier_file(settings: Settings, path: Path, errors_path: Path | None) -> LoadReport:
    report = LoadReport()

    def good_rows() -> Iterator[OutgoingRecord]:
        for row in read_suppliers_csv(path):
            if isinstance(row, RowError):
                report.errors.append(row)
            else:
                yield supplier_record(row)

    report.published = await publish_supplier_records(settings, good_rows(), total=None)
    for error in report.errors[:20]:
        print(f"row {error.line}: {error.reason}", file=sys.stderr)
    if errors_path is not None:
        with errors_path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["line", "reason"])
            writer.writerows((error.line, error.reason) for error in report.errors)
    return report


async def delete_suppliers(settings: Settings, supplier_ids: list[str]) -> int:
    return await publish_supplier_records(settings, map(tombstone, supplier_ids), total=len(supplier_ids))
