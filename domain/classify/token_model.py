"""Organisation-versus-person log odds per word, from the table `train_token_model` builds.

Known words use their learned value; unseen words are judged by their letter trigrams.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from functools import cache
from importlib import resources

from domain.census_names import NameFrequencies

_NGRAM = 3
_SHORT_WORD = 4
_LISTED_NAME_CAP = 1.0


def letter_ngrams(token: str) -> list[str]:
    padded = f"<{token}>"
    return [padded[index : index + _NGRAM] for index in range(len(padded) - _NGRAM + 1)]


@dataclass(frozen=True, slots=True)
class TokenModel:
    words: dict[str, float]
    grams: dict[str, float]

    def word_log_odds(self, token: str, names: NameFrequencies) -> float:
        """> 0: the word marks an organisation; < 0: a person. Unseen words fall back to letter patterns."""
        known = self.words.get(token)
        if known is not None:
            # Short census-listed names (LI, XIN, SHAO) also fill foreign company names: they may lean
            # towards an organisation only a little.
            return (
                min(known, _LISTED_NAME_CAP) if len(token) <= _SHORT_WORD and names.is_name(token) else known
            )
        grams = letter_ngrams(token)
        by_letters = sum(self.grams.get(gram, 0.0) for gram in grams) / len(grams)
        if len(token) <= _SHORT_WORD:
            by_letters /= 2  # a handful of letters says little about the word
        # A census-listed name that organisations hardly ever use cannot point to an organisation.
        return min(0.0, by_letters) if names.is_name(token) else by_letters


@cache
def token_model() -> TokenModel:
    words: dict[str, float] = {}
    grams: dict[str, float] = {}
    model_file = resources.files(__package__).joinpath("data").joinpath("token_model.csv.gz")
    with model_file.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            (words if row["kind"] == "word" else grams)[row["key"]] = float(row["log_odds"])
    return TokenModel(words, grams)
