"""Tokenisation of payee strings for the classifier (independent of the project's normaliser)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_ACRONYM_DOTS = re.compile(r"\b([A-Z])\.(?=[A-Z]\b\.?)")
# "OfMedical" / "BoardOf": a glued connector word is split so the phrase rules still see it.
_GLUED_CONNECTOR = re.compile(r"(?<=[a-z])(Of|And|For|The)(?=[A-Z])|\b(Of|And|For|The)(?=[A-Z][a-z])")
_PHD = re.compile(r"\bPH\.?\s?D\b\.?", re.IGNORECASE)
_NON_TOKEN = re.compile(r"[^A-Z0-9&#]+")
_HAS_DIGIT = re.compile(r"\d")


@dataclass(frozen=True, slots=True)
class PayeeText:
    tokens: tuple[str, ...]
    # Index of the token after the first comma ("SMITH, JOHN" -> 1), or None without a comma.
    comma_split: int | None


def _fold_accents(text: str) -> str:
    if text.isascii():
        return text
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def tokenize(name: str) -> PayeeText:
    """Upper-case word tokens; '&' and '#' stand alone; apostrophes vanish (O'BRIEN -> OBRIEN)."""
    text = _PHD.sub("PHD", _fold_accents(name).replace("'", "").replace("\u2019", ""))
    text = _GLUED_CONNECTOR.sub(lambda match: " " + (match.group(1) or match.group(2)) + " ", text)
    text = _ACRONYM_DOTS.sub(r"\1", text.upper())
    comma_split: int | None = None
    tokens: list[str] = []
    for part_index, part in enumerate(text.split(",")):
        if part_index == 1:
            comma_split = len(tokens)
        for raw in _NON_TOKEN.split(part.replace("&", " & ").replace("#", " # ")):
            if raw:
                tokens.append(raw)
    if comma_split is not None and not 0 < comma_split < len(tokens):
        comma_split = None
    return PayeeText(tuple(tokens), comma_split)


def has_digit(token: str) -> bool:
    return _HAS_DIGIT.search(token) is not None


def cache_key(name: str) -> str:
    """Normalised name used as the LLM cache key: case, accents, punctuation and spacing folded."""
    return " ".join(tokenize(name).tokens)
