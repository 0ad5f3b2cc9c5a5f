"""Builds data/token_model.csv.gz: how strongly each word (or letter pattern) marks an organisation
rather than a person.

Trained only from public sources the project ships or installs: organisation names from the supplier
list (../shared/data/suppliers.csv.gz: IRS exempt organisations, .gov registry, IEEE OUI) against the
census 1990 first/last name frequencies of the `names` package. Deterministic: same inputs, same file.

    python -m domain.classify.train_token_model [path/to/suppliers.csv.gz]
"""

from __future__ import annotations

import csv
import gzip
import math
import sys
from collections import Counter
from pathlib import Path

from domain.census_names import name_frequencies
from .text import tokenize
from .token_model import letter_ngrams

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SUPPLIERS = REPO_ROOT.parent / "shared" / "data" / "suppliers.csv.gz"
MODEL_FILE = Path(__file__).resolve().parent / "data" / "token_model.csv.gz"

# A word must occur in this many distinct organisation names to be kept: frequent words generalise,
# rare ones (one charity's proper name) would only be memorised.
MIN_ORGANISATION_NAMES = 5
MAX_LOG_ODDS = 4.0
# Share of the population assumed for a surname the census lists at 0.000 % (rounded) and for a word
# the census does not list at all.
LISTED_RARE_NAME_SHARE = 2e-6
UNLISTED_WORD_SHARE = 1e-7


def organisation_name_counts(suppliers: Path) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    names_seen = 0
    with gzip.open(suppliers, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            for name in {row["name"], row.get("alt_name") or ""} - {""}:
                names_seen += 1
                counts.update(set(tokenize(name).tokens))
    return counts, names_seen


def clamp(value: float) -> float:
    return max(-MAX_LOG_ODDS, min(MAX_LOG_ODDS, value))


def build(suppliers: Path) -> list[tuple[str, str, float]]:
    census = name_frequencies()
    counts, names_seen = organisation_name_counts(suppliers)
    rows: list[tuple[str, str, float]] = []
    for token, count in sorted(counts.items()):
        if count < MIN_ORGANISATION_NAMES or not token.isalpha() or len(token) < 2:
            continue
        person_share = (census.first_frequency(token) + census.last_frequency(token)) / 100
        if person_share == 0.0:
            person_share = LISTED_RARE_NAME_SHARE if census.is_name(token) else UNLISTED_WORD_SHARE
        rows.append(("word", token, round(clamp(math.log(count / names_seen / person_share)), 3)))

    # Letter trigrams for words seen nowhere: organisation vocabulary versus census name spellings,
    # each distinct word counted once so that neither side's few very common words dominate.
    organisation_words = {
        token
        for token, count in counts.items()
        if count >= 2 and token.isalpha() and not census.is_name(token)
    }
    person_words = set(census.first) | set(census.last)
    organisation_grams = Counter(gram for word in organisation_words for gram in letter_ngrams(word))
    person_grams = Counter(gram for word in person_words for gram in letter_ngrams(word))
    organisation_total = sum(organisation_grams.values())
    person_total = sum(person_grams.values())
    for gram in sorted(set(organisation_grams) | set(person_grams)):
        organisation_count, person_count = organisation_grams[gram], person_grams[gram]
        if organisation_count + person_count < 5:
            continue
        log_odds = math.log((organisation_count + 1) / organisation_total) - math.log(
            (person_count + 1) / person_total
        )
        rows.append(("gram", gram, round(clamp(log_odds), 3)))
    return rows


def main() -> None:
    suppliers = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SUPPLIERS
    rows = build(suppliers)
    # mtime=0 keeps the gzip bytes identical from run to run.
    with open(MODEL_FILE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed:
        text = "kind,key,log_odds\n" + "".join(f"{kind},{key},{value}\n" for kind, key, value in rows)
        compressed.write(text.encode("utf-8"))
    print(f"wrote {len(rows)} entries to {MODEL_FILE}")


if __name__ == "__main__":
    main()
