"""The official 1987 US SIC list (4-digit industries), loaded once from the shipped data file.

Source: the 1987 Standard Industrial Classification manual's 4-digit industry titles as published by
the US government (OSHA / Census short titles, public domain), 1,004 industries plus 9999
"Nonclassifiable establishments". Every SEC EDGAR assigned SIC code that is a 4-digit industry is in it.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources


@cache
def _sic_table() -> dict[str, str]:
    data_file = resources.files(__package__).joinpath("data").joinpath("sic_1987.csv")
    with data_file.open(encoding="utf-8", newline="") as handle:
        return {row["code"]: row["description"] for row in csv.DictReader(handle)}


def is_valid_sic(code: object) -> bool:
    """True when `code` is a 4-digit industry code of the official list (as a string, e.g. '0111')."""
    return isinstance(code, str) and code in _sic_table()


def sic_description(code: str | None) -> str | None:
    if code is None:
        return None
    return _sic_table().get(code)


def all_sic_codes() -> frozenset[str]:
    return frozenset(_sic_table())
