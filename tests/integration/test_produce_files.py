"""`payee-stream produce` with an AP export as finance teams have it, through the real broker."""

from __future__ import annotations

import asyncio
import json

import openpyxl
import pytest

from streams.kafka_io import publish_payee_file
from tests.conftest import read_topic

pytestmark = pytest.mark.integration


def test_produce_an_xlsx_export_keyed_by_source_and_vendor_id(settings, tmp_path):
    path = tmp_path / "ap-east-2026-11.xlsx"
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Payments")
    sheet.append(["Vendor ID", "Vendor Name", "Remit To Address", "ZIP", "Invoice Amount", "GL Account"])
    sheet.append(["V-1", "ACME TOOLS INC", "PO BOX 12", 2134, 1250.5, "6100"])
    sheet.append([None, None, None, None, None, None])
    sheet.append(["V-2", "SMITH, JOHN", None, None, "(25.00)", "6200"])
    workbook.save(path)
    messages: list[str] = []

    sent = asyncio.run(publish_payee_file(settings, path, settings.topic_raw, announce=messages.append))

    assert sent == 2
    assert "payee_name        ← 'Vendor Name'" in messages[0]
    records = sorted(read_topic(settings, settings.topic_raw, expected=2, timeout_s=30), key=lambda r: r["source_record_id"])
    assert records == [
        {"payee_name": "ACME TOOLS INC", "source_record_id": "V-1", "address_lines": ["PO BOX 12"],
         "postal_code": "02134", "amount": "1250.5", "source_system": "ap-east-2026-11",
         "metadata": {"GL Account": "6100"}},
        {"payee_name": "SMITH, JOHN", "source_record_id": "V-2", "amount": "-25.00",
         "source_system": "ap-east-2026-11", "metadata": {"GL Account": "6200"}},
    ]


def test_produce_passes_an_unreadable_json_line_on_as_it_was(settings, tmp_path):
    path = tmp_path / "payees.jsonl"
    path.write_text(json.dumps({"source_system": "ap", "source_record_id": "1", "payee_name": "ACME"}) + "\n{oops\n")
    assert asyncio.run(publish_payee_file(settings, path, settings.topic_raw)) == 2

    async def raw_values() -> list[bytes]:
        from streams.kafka_io import topic_reader

        values: list[bytes] = []
        async with topic_reader(settings, settings.topic_raw) as consumer:
            while len(values) < 2:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    values.extend(record.value for record in batch)
        return values

    good, broken = sorted(asyncio.run(asyncio.wait_for(raw_values(), 30)), key=lambda value: value == b"{oops")
    assert json.loads(good) == {"source_system": "ap", "source_record_id": "1", "payee_name": "ACME"}
    assert broken == b"{oops"  # the worker dead-letters it with the original bytes
