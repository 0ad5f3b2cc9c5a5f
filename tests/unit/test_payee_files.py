"""Payee files as finance teams have them: awkward CSVs, XLSX workbooks, JSON lines, column detection."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from domain.batch import RESULT_COLUMNS
from domain.payee_files import (
    PayeeFileError,
    detect_columns,
    iter_payloads,
    open_payee_rows,
    open_table,
    parse_amount,
    parse_date,
    parse_overrides,
)
from tests.conftest import FIXTURE_SUPPLIERS

REPO = Path(__file__).resolve().parent.parent.parent


def payloads(path: Path, *overrides: str, sheet: str | None = None) -> list[dict]:
    rows = open_payee_rows(path, overrides, sheet)
    return [payload for _, payload in iter_payloads(rows, "test")]


def test_csv_with_bom_semicolons_quoted_newlines_and_empty_rows(tmp_path):
    path = tmp_path / "ap.csv"
    path.write_bytes(
        "\ufeffVendor ID;Vendor Name;Remit To Address;City;ST;ZIP;Invoice Amount\r\n"
        "\r\n"
        '1001;"ACME TOOLS; INC";"PO BOX 12\r\nSUITE 4";Austin;TX;78701;"$1.234,50"\r\n'
        ";;;;;;\r\n"
        '1002;"Café ""Le Monde""";;;;;(12.50)\r\n'.encode()
    )
    table = open_table(path)
    assert table.columns[0] == "Vendor ID"  # the BOM is not part of the first header
    assert "semicolon" in table.detail
    records = payloads(path)
    assert len(records) == 2  # empty and all-blank rows skipped
    first, second = records
    assert first["payee_name"] == "ACME TOOLS; INC"
    assert first["source_record_id"] == "1001"
    assert first["address_lines"] == ["PO BOX 12", "SUITE 4"]
    assert (first["city"], first["state"], first["postal_code"]) == ("Austin", "TX", "78701")
    assert first["amount"] == "1234.50"
    assert second["payee_name"] == 'Café "Le Monde"'
    assert second["amount"] == "-12.50"


@pytest.mark.parametrize("delimiter", [",", "\t", "|"])
def test_any_delimiter(tmp_path, delimiter):
    path = tmp_path / "payees.txt"
    path.write_text(delimiter.join(["Payee", "Check Number", "Check Date"]) + "\n"
                    + delimiter.join(["JOHN SMITH", "5521", "11/02/2026"]) + "\n")
    [record] = payloads(path)
    assert record == {
        "payee_name": "JOHN SMITH",
        "source_record_id": "5521",
        "payment_date": "2026-11-02",
        "source_system": "test",
    }


def test_windows_1252_export(tmp_path):
    path = tmp_path / "legacy.csv"
    path.write_bytes("name,city\nCAF\xc9 ROYALE,Montr\xe9al\n".encode("cp1252"))
    [record] = payloads(path)
    assert record["payee_name"] == "CAFÉ ROYALE" and record["city"] == "Montréal"


def test_legacy_batch_columns_keep_working():
    mapping = detect_columns(["id", "name", "address", "city", "state", "postal_code"])
    assert dict(mapping.fields) == {
        "payee_name": ("name",),
        "source_record_id": ("id",),
        "address_lines": ("address",),
        "city": ("city",),
        "state": ("state",),
        "postal_code": ("postal_code",),
    }


def test_payee_record_field_names_win_over_synonyms():
    mapping = detect_columns(["name", "payee_name", "Vendor Name"])
    assert mapping.fields["payee_name"] == ("payee_name",)
    assert set(mapping.unmapped) == {"name", "Vendor Name"}


def test_ap_export_headers_case_insensitive():
    mapping = detect_columns(
        ["VENDOR_ID", "supplier", "Remit-To Address 1", "Remit To Address 2", "remit to city",
         "Remit To State", "Zip Code", "INVOICE AMOUNT", "Currency", "GL Account"]
    )
    assert mapping.fields["payee_name"] == ("supplier",)
    assert mapping.fields["source_record_id"] == ("VENDOR_ID",)
    assert mapping.fields["address_lines"] == ("Remit-To Address 1", "Remit To Address 2")
    assert mapping.fields["city"] == ("remit to city",)
    assert mapping.fields["postal_code"] == ("Zip Code",)
    assert mapping.fields["amount"] == ("INVOICE AMOUNT",)
    assert mapping.unmapped == ("GL Account",)
    assert any("payee_name" in line and "'supplier'" in line for line in mapping.describe())


def test_the_legal_name_wins_over_remit_to():
    assert detect_columns(["Remit To", "Vendor Name"]).fields["payee_name"] == ("Vendor Name",)


def test_overrides():
    overrides = parse_overrides(["payee_name=Beneficiary Legal Nm", "address_lines=Addr A, Addr B"])
    mapping = detect_columns(["Vendor Name", "beneficiary legal nm", "Addr A", "Addr B"], overrides)
    assert mapping.fields["payee_name"] == ("beneficiary legal nm",)
    assert mapping.fields["address_lines"] == ("Addr A", "Addr B")
    assert "payee_name" in mapping.overridden
    with pytest.raises(PayeeFileError, match="no column 'Nope'"):
        detect_columns(["Vendor Name"], parse_overrides(["payee_name=Nope"]))
    with pytest.raises(PayeeFileError, match="not one of"):
        parse_overrides(["colour=Vendor Name"])


def test_no_name_column_is_a_clear_error(tmp_path):
    with pytest.raises(PayeeFileError) as caught:
        detect_columns(["Invoice Number", "Amount"])
    message = str(caught.value)
    assert "no payee name column" in message and "'Invoice Number'" in message and "--column payee_name=" in message


def test_unmapped_columns_travel_as_metadata(tmp_path):
    path = tmp_path / "ap.csv"
    path.write_text("Vendor Name,GL Account,Invoice Amount\nACME,6100-200,TBD\n")
    [record] = payloads(path)
    assert record["metadata"] == {"GL Account": "6100-200", "Invoice Amount": "TBD"}  # an amount that is not one
    assert "amount" not in record


def test_xlsx_with_several_sheets(tmp_path):
    path = tmp_path / "payments.xlsx"
    workbook = openpyxl.Workbook()
    notes = workbook.active
    notes.title = "Notes"
    notes.append(["exported by AP", None])
    payments = workbook.create_sheet("Payments")
    payments.append([None])  # a blank row above the header
    payments.append(["Vendor #", "Payee", "ZIP", "Amount", "Paid On"])
    payments.append([4711, "Northwind Traders", 2134, 1250.5, __import__("datetime").datetime(2026, 11, 2)])
    payments.append([None, None, None, None, None])
    payments.append([4712, "Contoso Ltd", "02134-1234", 99, None])
    workbook.save(path)

    with pytest.raises(PayeeFileError, match="no payee name column"):
        open_payee_rows(path, sheet="Notes")
    with pytest.raises(PayeeFileError, match="sheets: Notes, Payments"):
        open_payee_rows(path, sheet="Missing")
    rows = open_payee_rows(path, ["source_record_id=Vendor #"])  # the notes sheet has no payee names
    assert "sheet 'Payments'" in rows.describe()
    first, second = (payload for _, payload in iter_payloads(rows, "test"))
    assert first["payee_name"] == "Northwind Traders"
    assert first["source_record_id"] == "4711"  # not "4711.0"
    assert first["postal_code"] == "02134"  # a ZIP stored as a number gets its leading zero back
    assert first["amount"] == "1250.5"
    assert first["payment_date"] == "2026-11-02"
    assert second["postal_code"] == "02134-1234"
    assert payloads(path, sheet="2")[1]["payee_name"] == "Contoso Ltd"


def test_json_lines_keys_may_differ_per_line(tmp_path):
    path = tmp_path / "payees.jsonl"
    path.write_text(
        json.dumps({"source_system": "ap", "source_record_id": "1", "payee_name": "ACME"}) + "\n\n"
        + json.dumps({"source_system": "ap", "source_record_id": "2", "payee_name": "Contoso",
                      "address_lines": ["1 MAIN ST"], "metadata": {"batch": "7"}}) + "\n"
        + "{not json\n"
    )
    first, second, broken = payloads(path)
    assert first == {"source_system": "ap", "source_record_id": "1", "payee_name": "ACME"}
    assert second["address_lines"] == ["1 MAIN ST"] and second["metadata"] == {"batch": "7"}
    assert isinstance(broken, str) and "line 4" in broken


def test_amounts_and_dates():
    assert parse_amount("1,234.50") == parse_amount("1.234,50") == parse_amount("$ 1234.5")
    assert parse_amount("75.00-") == -75
    assert parse_amount("n/a") is None and parse_amount("nan") is None
    assert parse_date("2026-11-02") == parse_date("11/2/26") == parse_date("11/02/2026")
    assert parse_date("31/31/2026") is None


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=180
    )


def ap_export(tmp_path: Path) -> Path:
    with FIXTURE_SUPPLIERS.open(newline="") as handle:
        government = next(row for row in csv.DictReader(handle) if row["category"] == "government")
    path = tmp_path / "ap-export.csv"
    path.write_text(
        "Vendor ID;Vendor Name;City;State;Invoice Amount;Approver\n"
        f"V1;{government['name'].title()};{government['city']};{government['state']};100.00;jdoe\n"
        "V2;SMITH, JOHN;;;25.00;jdoe\n"
        "V3;;;;;jdoe\n",
        encoding="utf-8-sig",
    )
    return path, government


def test_batch_writes_input_columns_then_results_to_csv(tmp_path):
    source, government = ap_export(tmp_path)
    out = tmp_path / "results.csv"
    completed = run_cli("batch", str(source), "--suppliers", str(FIXTURE_SUPPLIERS), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    assert "payee_name        ← 'Vendor Name'" in completed.stderr  # says which column is used for what
    with out.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == ["Vendor ID", "Vendor Name", "City", "State", "Invoice Amount", "Approver",
                                 *RESULT_COLUMNS]
    assert [row["Vendor ID"] for row in rows] == ["V1", "V2", "V3"]
    assert rows[0]["Approver"] == "jdoe"
    assert rows[0]["matched_supplier_id"] == government["supplier_id"]
    assert rows[0]["entity_type"] == "government" and rows[0]["match_decision"] == "matched"
    assert rows[1]["entity_type"] == "individual" and rows[1]["matched_supplier_id"] == ""
    assert rows[2]["status"] == "error" and "payee_name" in rows[2]["error"]


def test_batch_writes_xlsx(tmp_path):
    source, government = ap_export(tmp_path)
    out = tmp_path / "results.xlsx"
    completed = run_cli("batch", str(source), "--suppliers", str(FIXTURE_SUPPLIERS), "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    sheet = openpyxl.load_workbook(out, read_only=True)["results"]
    header, *rows = sheet.iter_rows(values_only=True)
    assert header[:2] == ("Vendor ID", "Vendor Name") and header[6:] == RESULT_COLUMNS
    assert rows[0][6] == government["supplier_id"]
    assert len(rows) == 3


def test_batch_without_a_name_column_fails_clearly_before_building_the_index(tmp_path):
    source = tmp_path / "no-names.csv"
    source.write_text("Invoice Number,Amount\n1,2\n")
    completed = run_cli("batch", str(source), "--suppliers", str(FIXTURE_SUPPLIERS), "--out", str(tmp_path / "o.csv"))
    assert completed.returncode == 2
    assert "no payee name column" in completed.stderr and "index" not in completed.stderr


def test_progress_off_a_terminal_is_a_few_lines(tmp_path):
    source = tmp_path / "many.csv"
    source.write_text("name\n" + "".join(f"PAYEE {n}\n" for n in range(3000)))
    completed = run_cli("batch", str(source), "--suppliers", str(FIXTURE_SUPPLIERS), "--out", str(tmp_path / "o.jsonl"))
    assert completed.returncode == 0, completed.stderr
    assert "\r" not in completed.stderr
    progress_lines = [line for line in completed.stderr.splitlines() if line.startswith("payees")]
    assert 1 <= len(progress_lines) <= 3, progress_lines
    assert "3000" in progress_lines[-1]
