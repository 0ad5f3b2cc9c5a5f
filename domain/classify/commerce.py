"""Commercial vocabulary: industry-title words, foreign-language trade words and US places.

The industry words and places are built by `train_commercial_vocabulary` from public sources (SIC 1987
and NAICS 2022 titles, census names, GeoNames cities); the foreign-language trade words below are written
from general knowledge of shop and restaurant names. The shared vocabularies (legal forms, US states,
organisation kinds) stay in `lexicon`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Words that name a shop, an eatery or a venue in Spanish, Italian, French or Portuguese (those the
# lexicon already lists as restaurants, TAQUERIA or TRATTORIA, are not repeated).
FOREIGN_TRADE_WORDS = frozenset(
    "TAQUERIAS OSTERIA RISTORANTE ENOTECA GELATERIA PASTICCERIA "
    "PANADERIA PANIFICADORA CARNICERIA TORTILLERIA PALETERIA MEZCALERIA CEVICHERIA BIRRERIA LAVANDERIA "
    "ZAPATERIA FLORERIA JOYERIA FERRETERIA MUEBLERIA LLANTERA TIENDA MERCADO SUPERMERCADO BODEGA "
    "RESTAURANTE COCINA HACIENDA POSADA CASA MARISCOS POLLO TACOS TACO TAMALES BURRITOS "
    "BOULANGERIE PATISSERIE BRASSERIE CREPERIE FROMAGERIE CHARCUTERIE AUBERGE BISTROT "
    "CHURRASCARIA PADARIA LANCHONETE SALUMERIA MACELLERIA".split()
)
# Trade-name endings of those languages (PANADERIA, BOULANGERIE); a census-listed name is exempt
# (VALERIA, MARIE), and so is the English plural -ERIES (BATTERIES, SERIES).
FOREIGN_TRADE_ENDINGS = ("ERIA", "ERIAS", "ERIE")


@dataclass(frozen=True, slots=True)
class IndustryWord:
    log_odds: float
    sic_code: str | None


def _data_rows(file_name: str) -> list[dict[str, str]]:
    data_file = resources.files(__package__).joinpath("data").joinpath(file_name)
    with data_file.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def industry_words() -> dict[str, IndustryWord]:
    """Words of the industry titles, with their organisation-versus-person log odds."""
    return {
        row["word"]: IndustryWord(float(row["log_odds"]), row["sic"] or None)
        for row in _data_rows("commercial_vocabulary.csv")
    }


@cache
def us_places() -> frozenset[tuple[str, ...]]:
    """US cities of 15,000 people or more, as token tuples (('SAN', 'DIEGO'), ('TEMPE',))."""
    return frozenset(tuple(row["place"].split()) for row in _data_rows("us_places.csv"))


def is_foreign_trade_word(token: str, is_census_name: bool) -> bool:
    if token in FOREIGN_TRADE_WORDS:
        return True
    return (
        not is_census_name
        and len(token) >= 7
        and token.isalpha()
        and token.endswith(FOREIGN_TRADE_ENDINGS)
    )
