"""The supplier record, its CSV reader (row errors as values) and its JSON event form."""

from __future__ import annotations

import csv
import gzip
import io
import operator
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

SUPPLIER_FIELDS = (
    "supplier_id", "name", "alt_name", "address", "city", "state",
    "postal_code", "country", "category", "code",
)
REQUIRED_FIELDS = ("supplier_id", "name")
_FIELD_VALUES = operator.attrgetter(*SUPPLIER_FIELDS)
MAX_FIELD_CHARS = 500


@dataclass(frozen=True, slots=True)
class Supplier:
    supplier_id: str
    name: str
    alt_name: str = ""
    address: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""
    category: str = ""
    code: str = ""

    def canonical_row(self) -> str:
        """Every field in a fixed order, unit-separated: the input of content digests."""
        return "\x1f".join(_FIELD_VALUES(self))


@dataclass(frozen=True, slots=True)
class RowError:
    """A CSV row that cannot become a supplier; ``line`` is the 1-based physical line."""

    line: int
    reason: str


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return path.open(encoding="utf-8", errors="replace", newline="")


def _row_to_supplier(row: dict[str | None, str | list[str] | None], line: int) -> Supplier | RowError:
    if None in row:
        return RowError(line, "more fields than the header")
    values = {name: (row.get(name) or "").strip() for name in SUPPLIER_FIELDS}
    missing = [name for name in REQUIRED_FIELDS if not values[name]]
    if missing:
        return RowError(line, f"missing {', '.join(missing)}")
    too_long = [name for name, value in values.items() if len(value) > MAX_FIELD_CHARS]
    if too_long:
        return RowError(line, f"{', '.join(too_long)} longer than {MAX_FIELD_CHARS} characters")
    return Supplier(**values)


def read_suppliers_csv(path: str | Path) -> Iterator[Supplier | RowError]:
    """Suppliers from a ``.csv`` or ``.csv.gz`` with a header row; bad rows come back as ``RowError``."""
    path = Path(path)
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        absent = [name for name in REQUIRED_FIELDS if name not in header]
        if absent:
            yield RowError(1, f"header lacks {', '.join(absent)}")
            return
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RowError(line, f"unreadable CSV: {exc}")
                continue
            yield _row_to_supplier(row, line)


def supplier_to_dict(supplier: Supplier) -> dict[str, str]:
    return asdict(supplier)


def supplier_from_dict(data: dict[str, object]) -> Supplier:
    """The event form back into a ``Supplier``; raises ``ValueError`` / ``TypeError`` if unusable."""
    if not isinstance(data, dict):
        raise TypeError(f"supplier must be an object, not {type(data).__name__}")
    values: dict[str, str] = {}
    for field in fields(Supplier):
        value = data.get(field.name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise TypeError(f"{field.name} must be a string")
        values[field.name] = value.strip()
    if not values["supplier_id"] or not values["name"]:
        raise ValueError("supplier_id and name are required")
    return Supplier(**values)
