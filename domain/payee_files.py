"""Payment files as finance teams have them: CSV (any delimiter, BOM, quoted newlines), XLSX and
JSON lines, read and written one row at a time so a file of any length runs in bounded memory.

Reading: ``open_table`` gives the file's columns and an iterator of rows (column → value).
``detect_columns`` decides which column feeds which ``PayeeRecord`` field, from the field names,
the legacy ``id,name,address,city,state,postal_code`` columns and common accounts-payable export
headers ("Vendor Name", "Remit To", "Invoice Amount", "ZIP" …), case-insensitively; overrides
win. ``record_payload`` turns one row into a ``PayeeRecord``-shaped dict (validated by the caller).

Writing: ``open_writer`` picks CSV, XLSX or JSON lines by the output file's extension.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Protocol

from schemas.events import PayeeRecord

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_SNIFF_BYTES = 64 * 1024
_SNIFF_DELIMITERS = ",;\t|"
# One XLSX sheet holds 1,048,576 rows; a longer output continues on a further sheet.
XLSX_MAX_ROWS = 1_048_576
METADATA_MAX_ENTRIES = 50
METADATA_VALUE_MAX_CHARS = 500

Row = dict[str, Any]
# Keys of the row standing for a JSON line that is not an object: why, and the line as it was.
UNREADABLE_ROW = "__unreadable__"
ORIGINAL_LINE = "__line__"


class PayeeFileError(ValueError):
    """A file that cannot be read as a payee table; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Table:
    """A payee file opened for reading: its columns, an estimate of its rows, and the rows."""

    path: Path
    format: str  # "csv", "xlsx" or "jsonl"
    columns: tuple[str, ...]
    rows: Iterator[Row]
    estimated_rows: int | None
    detail: str  # delimiter, encoding or sheet, for the user
    # Columns that may appear in later rows only (JSON lines): mapped, never written out.
    optional_columns: tuple[str, ...] = ()
    # Releases the file when the rows are not read to the end.
    close: Callable[[], None] = lambda: None


def _suffixes(path: Path) -> tuple[str, str]:
    """The format suffix and whether the file is gzipped (``payees.csv.gz``)."""
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), ("gz" if gz else "")


def file_format(path: Path) -> str:
    suffix, _ = _suffixes(path)
    if suffix in XLSX_SUFFIXES:
        return "xlsx"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise PayeeFileError(
        f"{path.name}: unknown file type {suffix or '(none)'}; use .csv/.tsv/.txt, .xlsx or .jsonl (optionally .gz)"
    )


def _open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if _suffixes(path)[1] else path.open("rb")


def _count_lines(path: Path) -> int:
    """Newlines in the file: a cheap row estimate for the progress bar (quoted newlines overcount)."""
    count = 0
    with _open_binary(path) as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the sample decodes as UTF-8, else Windows-1252 (Excel's)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _sniff_dialect(text: str) -> type[csv.Dialect] | csv.Dialect:
    # Sniff whole lines only: a record cut in half confuses the quote detection.
    sample = text[: text.rfind("\n") + 1] or text
    try:
        return csv.Sniffer().sniff(sample, delimiters=_SNIFF_DELIMITERS)
    except csv.Error:
        return csv.excel


def _unique_headers(cells: Sequence[Any]) -> tuple[str, ...]:
    """Header cells as column names: blanks get a position name, repeats a number."""
    seen: dict[str, int] = {}
    names = []
    for position, cell in enumerate(cells, start=1):
        name = _cell_text(cell).strip() or f"column_{position}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        names.append(name)
    return tuple(names)


def _is_blank(cells: Sequence[Any]) -> bool:
    return all(_cell_text(cell).strip() == "" for cell in cells)


def _rows_from_cells(columns: tuple[str, ...], cell_rows: Iterator[Sequence[Any]]) -> Iterator[Row]:
    width = len(columns)
    for cells in cell_rows:
        if _is_blank(cells):
            continue
        row = dict(zip(columns, cells, strict=False))
        if len(cells) > width:  # a ragged row keeps its extra cells rather than losing them
            for position, cell in enumerate(cells[width:], start=width + 1):
                row[f"column_{position}"] = cell
        yield row


def _open_csv(path: Path) -> Table:
    with _open_binary(path) as probe:
        sample = probe.read(_SNIFF_BYTES)
    encoding = _detect_encoding(sample)
    dialect = _sniff_dialect(sample.decode(encoding, errors="replace"))
    estimated = max(0, _count_lines(path) - 1)

    handle = io.TextIOWrapper(_open_binary(path), encoding=encoding, errors="replace", newline="")
    reader = csv.reader(handle, dialect)
    header: list[str] | None = next((cells for cells in reader if not _is_blank(cells)), None)
    if header is None:
        handle.close()
        raise PayeeFileError(f"{path.name}: no header row (the file is empty)")
    columns = _unique_headers(header)

    def rows() -> Iterator[Row]:
        with handle:
            yield from _rows_from_cells(columns, reader)

    delimiter = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}.get(dialect.delimiter, repr(dialect.delimiter))
    return Table(
        path, "csv", columns, rows(), estimated, f"{delimiter}-delimited, {encoding}", close=handle.close
    )


def _open_xlsx(path: Path, sheet: str | None) -> Table:
    import openpyxl  # only XLSX files need it

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    names = workbook.sheetnames
    if sheet is None:
        chosen = names[0]
    elif sheet in names:
        chosen = sheet
    elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
        chosen = names[int(sheet) - 1]
    else:
        workbook.close()
        raise PayeeFileError(f"{path.name}: no sheet {sheet!r}; sheets: {', '.join(names)} (name or 1-based number)")
    worksheet = workbook[chosen]
    cell_rows = worksheet.iter_rows(values_only=True)
    header = next((cells for cells in cell_rows if not _is_blank(cells)), None)
    if header is None:
        workbook.close()
        raise PayeeFileError(f"{path.name}: sheet {chosen!r} has no header row")
    columns = _unique_headers(header)
    max_row = worksheet.max_row

    def rows() -> Iterator[Row]:
        try:
            yield from _rows_from_cells(columns, cell_rows)
        finally:
            workbook.close()

    others = f" (of {', '.join(names)}; choose with --sheet)" if len(names) > 1 else ""
    return Table(
        path, "xlsx", columns, rows(), max_row - 1 if max_row else None, f"sheet {chosen!r}{others}",
        close=workbook.close,
    )


def _open_jsonl(path: Path) -> Table:
    handle = io.TextIOWrapper(_open_binary(path), encoding="utf-8-sig", errors="replace")
    first: Row | None = None
    first_line = 0
    for first_line, line in enumerate(handle, start=1):
        if line.strip():
            first = _json_object(line, first_line, path)
            break
    if first is None:
        handle.close()
        raise PayeeFileError(f"{path.name}: no JSON objects (the file is empty)")
    estimated = _count_lines(path)

    def rows() -> Iterator[Row]:
        with handle:
            yield first
            for number, line in enumerate(handle, start=first_line + 1):
                if line.strip():
                    yield _json_object(line, number, path)

    # Objects differ in their keys: record fields that only later objects have still map by name.
    later_fields = tuple(name for name in PayeeRecord.model_fields if name not in first)
    return Table(path, "jsonl", tuple(first), rows(), estimated, "JSON lines", later_fields, handle.close)


def _json_object(line: str, number: int, path: Path) -> Row:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        # A broken line is a row holding the error and the line: reported or passed on, never dropped.
        return {UNREADABLE_ROW: f"line {number}: not JSON ({exc.msg})", ORIGINAL_LINE: line.rstrip("\r\n")}
    if not isinstance(value, dict):
        return {
            UNREADABLE_ROW: f"line {number}: a JSON {type(value).__name__}, not an object",
            ORIGINAL_LINE: line.rstrip("\r\n"),
        }
    return value


def open_table(path: str | Path, sheet: str | None = None) -> Table:
    """Open a payee file; rows are read lazily as the caller iterates."""
    path = Path(path)
    if not path.exists():
        raise PayeeFileError(f"{path}: no such file")
    kind = file_format(path)
    if kind == "xlsx":
        return _open_xlsx(path, sheet)
    if sheet is not None:
        raise PayeeFileError("--sheet applies to XLSX files only")
    return _open_jsonl(path) if kind == "jsonl" else _open_csv(path)


# ---------------------------------------------------------------------------------------------
# Column detection


def header_key(header: str) -> str:
    """A header as compared: lower case, runs of anything but letters and digits as one space."""
    return " ".join(re.findall(r"[a-z0-9]+", header.lower()))


# PayeeRecord fields a file column can feed; the value is the list of header keys that mean it,
# most specific first. Field names themselves always match.
FIELD_HEADERS: dict[str, tuple[str, ...]] = {
    "payee_name": (
        "name", "payee", "payee name", "vendor name", "supplier name", "remit to name", "pay to name",
        "beneficiary name", "merchant name", "vendor", "supplier", "remit to", "pay to", "payable to",
        "beneficiary", "merchant", "company name", "company", "vendor legal name", "legal name",
    ),
    "source_record_id": (
        "id", "record id", "payment id", "transaction id", "invoice number", "invoice no", "invoice id",
        "invoice", "check number", "check no", "document number", "voucher number", "voucher id",
        "vendor id", "vendor number", "vendor no", "vendor code", "supplier id", "supplier number",
        "payee id", "payee number",
    ),
    "address_lines": (
        "address", "address 1", "address1", "address line 1", "address line1", "street", "street address",
        "street 1", "remit to address", "remit address", "mailing address", "remit to address 1",
        "address 2", "address2", "address line 2", "address line2", "street 2", "remit to address 2",
        "address 3", "address3", "address line 3",
    ),
    "city": ("city", "town", "remit to city", "remit city", "vendor city", "supplier city", "payee city"),
    "state": (
        "state", "st", "state code", "province", "state province", "remit to state", "remit state",
        "vendor state", "supplier state", "payee state",
    ),
    "postal_code": (
        "postal code", "zip", "zip code", "zipcode", "postcode", "zip postal code", "remit to zip",
        "remit zip", "vendor zip", "supplier zip", "payee zip", "zip 5", "zip5",
    ),
    "country": ("country", "country code", "remit to country", "vendor country", "supplier country"),
    "amount": (
        "amount", "invoice amount", "payment amount", "check amount", "amount paid", "paid amount",
        "net amount", "gross amount", "total amount", "total", "transaction amount",
    ),
    "currency": ("currency", "currency code", "ccy"),
    "payment_date": (
        "payment date", "check date", "paid date", "date paid", "paid on", "invoice date", "transaction date",
        "date",
    ),
    "source_system": ("source system", "source"),
    "metadata": (),
}
# A record's own schema version is not data about the payee.
IGNORED_COLUMNS = frozenset({"schema_version"})
# Fields filled from several columns, in file order (address line 1, 2, 3).
MULTI_COLUMN_FIELDS = frozenset({"address_lines"})


@dataclass(frozen=True)
class ColumnMapping:
    """Which file columns feed which ``PayeeRecord`` field; the rest travel as metadata."""

    fields: Mapping[str, tuple[str, ...]]
    unmapped: tuple[str, ...]
    overridden: frozenset[str]

    def describe(self) -> list[str]:
        lines = []
        for name, columns in self.fields.items():
            how = "set by --column" if name in self.overridden else "detected"
            lines.append(f"  {name:<17} ← {', '.join(repr(c) for c in columns)} ({how})")
        if self.unmapped:
            lines.append(f"  {'metadata':<17} ← {', '.join(repr(c) for c in self.unmapped)}")
        return lines


def parse_overrides(specs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``FIELD=COLUMN`` strings (``address_lines=Addr 1,Addr 2`` for several) into a mapping."""
    overrides: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        field_name, sep, columns = spec.partition("=")
        field_name = field_name.strip()
        if not sep or not columns.strip():
            raise PayeeFileError(f"--column {spec!r}: expected FIELD=COLUMN, e.g. payee_name='Vendor Name'")
        if field_name not in FIELD_HEADERS:
            raise PayeeFileError(f"--column {spec!r}: {field_name!r} is not one of {', '.join(FIELD_HEADERS)}")
        parts = tuple(part.strip() for part in columns.split(",")) if field_name in MULTI_COLUMN_FIELDS else (columns.strip(),)
        overrides[field_name] = overrides.get(field_name, ()) + parts
    return overrides


def _resolve_column(wanted: str, columns: Sequence[str]) -> str:
    for column in columns:
        if column == wanted:
            return column
    for column in columns:
        if header_key(column) == header_key(wanted):
            return column
    raise PayeeFileError(f"--column: no column {wanted!r} in the file; columns: {', '.join(columns)}")


def detect_columns(
    columns: Sequence[str],
    overrides: Mapping[str, Sequence[str]] | None = None,
    optional: Sequence[str] = (),
) -> ColumnMapping:
    """Map file columns to record fields; raises ``PayeeFileError`` when no column holds the name.

    ``optional`` columns may be mapped but are not reported as unmapped (JSON lines' later keys)."""
    overrides = overrides or {}
    present = list(columns)
    columns = present + [column for column in optional if column not in present]
    taken: set[str] = set()
    fields: dict[str, tuple[str, ...]] = {}
    for field_name, wanted in overrides.items():
        resolved = tuple(_resolve_column(column, columns) for column in wanted)
        fields[field_name] = resolved
        taken.update(resolved)

    keys = {column: header_key(column) for column in columns}
    for field_name, synonyms in FIELD_HEADERS.items():
        if field_name in fields:
            continue
        # The field's own name first, then synonyms in their order of preference.
        preference = {key: rank for rank, key in enumerate(synonyms)} | {header_key(field_name): -1}
        candidates = sorted(
            (preference[keys[column]], position, column)
            for position, column in enumerate(columns)
            if column not in taken and keys[column] in preference
        )
        if not candidates:
            continue
        if field_name in MULTI_COLUMN_FIELDS:
            chosen = tuple(column for _, _, column in sorted(candidates, key=lambda c: c[1]))
        else:
            chosen = (candidates[0][2],)
        fields[field_name] = chosen
        taken.update(chosen)

    if "payee_name" not in fields:
        raise PayeeFileError(
            "no payee name column among: "
            + ", ".join(repr(c) for c in columns)
            + ". Name it with --column payee_name=COLUMN (headers recognised: payee_name, name, payee, "
            "vendor name, supplier, remit to …)"
        )
    ordered = {name: fields[name] for name in FIELD_HEADERS if name in fields}
    unmapped = tuple(column for column in present if column not in taken and column not in IGNORED_COLUMNS)
    return ColumnMapping(ordered, unmapped, frozenset(overrides))


# ---------------------------------------------------------------------------------------------
# Rows into records


def _cell_text(value: Any) -> str:
    """A cell as text the way a person reads it: 12345.0 from a spreadsheet is 12345."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


_AMOUNT_NOISE = re.compile(r"[\s$€£¥]|USD|EUR|GBP", re.IGNORECASE)
_THOUSANDS_COMMAS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d*)?$")
_DECIMAL_COMMA = re.compile(r"^\d+,\d{1,2}$")
_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})$")


def parse_amount(value: Any) -> Decimal | None:
    """``$1,234.50``, ``(75.00)`` (negative) or a number; None when it is not an amount."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return Decimal(str(value))
    text = _cell_text(value).strip()
    negative = text.startswith("(") and text.endswith(")")
    text = _AMOUNT_NOISE.sub("", text.strip("()"))
    if text.endswith("-"):  # "75.00-" in some ledger exports
        negative, text = True, text[:-1]
    text = _decimal_point(text)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return -amount if negative else amount


def _fits_record(amount: Decimal) -> bool:
    """Within ``PayeeRecord.amount``'s digits, so an odd amount never rejects the whole record."""
    exponent = amount.as_tuple().exponent
    return isinstance(exponent, int) and -exponent <= 4 and len(amount.as_tuple().digits) <= 20


def _decimal_point(text: str) -> str:
    """"1.234,50" and "12,50" (decimal comma) or "1,234.50" (thousands commas) as "1234.50"."""
    if "," in text and "." in text:
        if text.rfind(",") > text.rfind("."):
            return text.replace(".", "").replace(",", ".")
        return text.replace(",", "")
    if _THOUSANDS_COMMAS.match(text):
        return text.replace(",", "")
    if _DECIMAL_COMMA.match(text):
        return text.replace(",", ".")
    return text


def parse_date(value: Any) -> date | None:
    """ISO dates, US ``M/D/YYYY`` (and ``M/D/YY``), spreadsheet dates; None otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _cell_text(value).strip()
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    us = _US_DATE.match(text)
    if us:
        month, day, year = (int(part) for part in us.groups())
        year += 2000 if year < 100 else 0
        try:
            return date(year, month, day)
        except ValueError:
            return None
    return None


def _postal_text(value: Any) -> str:
    """A ZIP that a spreadsheet stored as a number lost its leading zeros: 2134 is 02134."""
    text = _cell_text(value).strip()
    if isinstance(value, int | float) and text.isdigit() and 3 <= len(text) < 5:
        return text.zfill(5)
    if isinstance(value, int | float) and text.isdigit() and 7 <= len(text) < 9:  # ZIP+4 as a number
        return text.zfill(9)[:5] + "-" + text.zfill(9)[5:]
    return text


def _metadata_value(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    return _cell_text(value)[:METADATA_VALUE_MAX_CHARS]


def record_payload(row: Row, mapping: ColumnMapping, source_system: str, row_number: int) -> dict[str, Any]:
    """One file row as a ``PayeeRecord``-shaped dict (JSON-ready; validation is the caller's).

    Values that do not parse (an amount of "TBD") are not lost: they travel in ``metadata``."""
    payload: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    for field_name, columns in mapping.fields.items():
        values = [row.get(column) for column in columns]
        if field_name == "address_lines":
            lines = []
            for value in values:
                for item in value if isinstance(value, list) else [value]:
                    # A quoted cell may hold several lines ("PO BOX 12\nSUITE 4").
                    lines.extend(line.strip() for line in _cell_text(item).splitlines())
            if any(lines):
                payload[field_name] = [line for line in lines if line]
            continue
        value = values[0]
        if field_name == "metadata":
            if isinstance(value, dict):
                metadata.update(value)
            continue
        if value is None or _cell_text(value).strip() == "":
            continue
        if field_name == "amount":
            amount = parse_amount(value)
            if amount is None or not _fits_record(amount):
                metadata[columns[0]] = _metadata_value(value)
            else:
                payload[field_name] = str(amount)
        elif field_name == "payment_date":
            parsed = parse_date(value)
            if parsed is None:
                metadata[columns[0]] = _metadata_value(value)
            else:
                payload[field_name] = parsed.isoformat()
        elif field_name == "postal_code":
            payload[field_name] = _postal_text(value)
        elif field_name == "currency":
            payload[field_name] = _cell_text(value).strip().upper()
        else:
            payload[field_name] = _cell_text(value).strip()
    for column in mapping.unmapped:
        value = row.get(column)
        if len(metadata) >= METADATA_MAX_ENTRIES:
            break
        if value is not None and _cell_text(value).strip() != "":
            metadata.setdefault(column, _metadata_value(value))
    payload.setdefault("source_system", source_system)
    payload.setdefault("source_record_id", f"row-{row_number}")
    if metadata:
        payload["metadata"] = metadata
    return payload


@dataclass(frozen=True)
class PayeeRows:
    """A payee file ready to process: the table, its column mapping, and (row, payload) pairs."""

    table: Table
    mapping: ColumnMapping

    def describe(self) -> str:
        return "\n".join(
            [f"reading {self.table.path.name} ({self.table.format}, {self.table.detail}); columns used:"]
            + self.mapping.describe()
        )


def open_payee_rows(
    path: str | Path, overrides: Sequence[str] = (), sheet: str | None = None
) -> PayeeRows:
    """Open a payee file and map its columns. A workbook without ``sheet`` is read from its first
    sheet that has a payee name column (a cover or notes sheet before the data is common)."""
    parsed = parse_overrides(overrides)
    path = Path(path)
    candidates: Sequence[str | None] = [sheet]
    if sheet is None and file_format(path) == "xlsx" and path.exists():
        candidates = _xlsx_sheet_names(path)
    first_error: PayeeFileError | None = None
    for candidate in candidates:
        table = open_table(path, candidate)
        try:
            return PayeeRows(table, detect_columns(table.columns, parsed, table.optional_columns))
        except PayeeFileError as error:
            table.close()
            first_error = first_error or error
    assert first_error is not None
    raise first_error


def _xlsx_sheet_names(path: Path) -> list[str]:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def iter_payloads(rows: PayeeRows, source_system: str) -> Iterator[tuple[Row, dict[str, Any] | str]]:
    """Each row with its record payload, or with the reason it has none (an unreadable JSON line,
    whose row holds the line as it was under ``ORIGINAL_LINE``)."""
    for number, row in enumerate(rows.table.rows, start=1):
        if UNREADABLE_ROW in row:
            yield row, str(row[UNREADABLE_ROW])
        else:
            yield row, record_payload(row, rows.mapping, source_system, number)


# ---------------------------------------------------------------------------------------------
# Writing


class RowWriter(Protocol):
    def write(self, row: Sequence[Any]) -> None: ...


@contextmanager
def _csv_writer(path: Path, columns: Sequence[str]) -> Iterator[RowWriter]:
    # UTF-8 with a BOM: Excel, where finance teams open these files, then reads accents right.
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)

        class _Writer:
            def write(self, row: Sequence[Any]) -> None:
                writer.writerow([_cell_text(value) for value in row])

        yield _Writer()


@contextmanager
def _xlsx_writer(path: Path, columns: Sequence[str]) -> Iterator[RowWriter]:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)  # rows stream to a temporary file, not memory
    header = list(columns)

    class _Writer:
        def __init__(self) -> None:
            self.sheets = 0
            self.rows_in_sheet = XLSX_MAX_ROWS

        def write(self, row: Sequence[Any]) -> None:
            if self.rows_in_sheet >= XLSX_MAX_ROWS:
                self.sheets += 1
                self.sheet = workbook.create_sheet("results" if self.sheets == 1 else f"results {self.sheets}")
                self.sheet.append(header)
                self.rows_in_sheet = 1
            self.sheet.append([_xlsx_value(value) for value in row])
            self.rows_in_sheet += 1

    writer = _Writer()
    try:
        yield writer
    finally:
        if writer.sheets == 0:
            workbook.create_sheet("results").append(header)
        workbook.save(path)


_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xlsx_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | Decimal | date):
        return value
    return _ILLEGAL_XLSX.sub("", _cell_text(value))


def output_format(path: Path) -> str:
    kind = file_format(path)
    if _suffixes(path)[1]:
        raise PayeeFileError(f"{path.name}: output is not compressed; drop the .gz")
    return kind


@contextmanager
def open_writer(path: str | Path, columns: Sequence[str]) -> Iterator[RowWriter]:
    """A table writer (CSV or XLSX by extension) taking one row of ``columns`` values at a time."""
    path = Path(path)
    kind = output_format(path)
    if kind == "jsonl":
        raise PayeeFileError("JSON lines output takes objects; use open_jsonl_writer")
    factory = _xlsx_writer if kind == "xlsx" else _csv_writer
    with factory(path, columns) as writer:
        yield writer


@contextmanager
def open_jsonl_writer(path: str | Path) -> Iterator[Callable[[Mapping[str, Any]], None]]:
    with Path(path).open("w", encoding="utf-8") as handle:
        yield lambda obj: handle.write(json.dumps(obj, ensure_ascii=False, default=_cell_text) + "\n")


def valid_record(payload: dict[str, Any]) -> PayeeRecord:
    """The payload as a record; raises pydantic's ``ValidationError`` when it is not one."""
    return PayeeRecord.model_validate(payload)
