"""Payee and supplier name normalisation: one canonical form for both sides of a match.

``normalize_name`` is total: any string (control characters, emoji, 1 MB of text) gives a
result and never raises. Both payee names and supplier names go through it, so every rule
here only has to be consistent, not linguistically perfect.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz.distance import DamerauLevenshtein

from domain.vocabulary import ABBREVIATIONS, LEGAL_SUFFIXES, US_STATE_CODES

# Payment systems cut names at 30–35 characters; nothing useful lies beyond a few hundred.
MAX_INPUT_CHARS = 300

# Payment systems cut names at 30–35 characters; a name this long may have been cut.
CUT_NAME_MIN_CHARS = 20
# A name cut inside its legal form ends in a prefix of one of the long spellings: six letters
# anywhere ("INCORPORAT"), five in a name long enough to have been cut ("INCOR", "CORPO"), but
# never a word of its own.
_MIN_CUT_SUFFIX = 6
_MIN_CUT_SUFFIX_IN_CUT_NAME = 5
_WORDS_NOT_CUT_FORMS = frozenset({"LIMIT"})
_LONG_LEGAL_FORMS = tuple(
    (spelling, canonical) for spelling, canonical in LEGAL_SUFFIXES.items() if len(spelling) > _MIN_CUT_SUFFIX
)
_LONG_LEGAL_FORMS_BY_INITIAL: dict[str, list[tuple[str, str]]] = {}
# Every beginning of a long spelling a cut name may end in, and the form of the first spelling it begins.
_CUT_LEGAL_FORMS: dict[str, str] = {}
for _spelling, _canonical in _LONG_LEGAL_FORMS:
    _LONG_LEGAL_FORMS_BY_INITIAL.setdefault(_spelling[0], []).append((_spelling, _canonical))
    for _end in range(_MIN_CUT_SUFFIX_IN_CUT_NAME, len(_spelling) + 1):
        _CUT_LEGAL_FORMS.setdefault(_spelling[:_end], _canonical)

# Misspelt legal forms are recognised only when long enough that one or two edits cannot
# make them another word ("INCORPOATED", "CORPORATOIN"; not "COMPANY" → "COMPANT").
_MIN_MISSPELT_SUFFIX = 9
_MIN_TWO_TYPO_SUFFIX = 12

# Every token is spelt one way: abbreviations expanded, legal forms in their canonical spelling
# wherever they stand ("GALA INCORPORATED GROUPO…" = "GALA INC GROUPO…", COS = CO).
_CANONICAL_WORDS: dict[str, str] = {**LEGAL_SUFFIXES, **ABBREVIATIONS}

# Markers that introduce another name of the same payee ("ACME INC DBA ACME TOOLS").
_ALIAS_MARKER = re.compile(
    r"\b(?:D\s*/\s*B\s*/\s*A|DBA|A\s*/\s*K\s*/\s*A|AKA|F\s*/\s*K\s*/\s*A|FKA|T\s*/\s*A)\b"
)
# Markers after which the text is about delivery, not the payee ("ACME C/O JOHN DOE").
_ROUTING_MARKER = re.compile(
    r"(?:\bC\s*/\s*O\b|\bC-O\b|\bATTN\b|\bATTENTION\s*:|\bREMIT\s+TO\b|\bREMIT\b|\bP\.?\s*O\.?\s*BOX\b|%)"
)
# Routing words at the very start carry no name ("REMIT TO ACME"): dropped, the rest kept.
_LEADING_ROUTING = re.compile(
    r"^\s*(?:(?:REMIT\s+TO|REMIT|PAY\s+TO(?:\s+THE\s+ORDER\s+OF)?|PAYABLE\s+TO"
    r"|C\s*/\s*O|C-O|ATTN|ATTENTION)\b|%)[\s:]*"
)
_DOTTED_INITIALS = re.compile(r"\b(?:[A-Z0-9]\.){2,}(?![A-Z0-9])|\b(?:[A-Z]\.)+[A-Z]\b")
_AMPERSAND_INITIALS = re.compile(r"\b([A-Z]{1,2})\s*&\s*([A-Z]{1,2})\b")
_APOSTROPHES = re.compile(r"['’`´]")
_NON_ALNUM = re.compile(r"[^0-9A-Z]+")
# Two or more one-letter words in a row, in text that _NON_ALNUM has reduced to words and single spaces.
_LETTER_RUN = re.compile(r"(?<![0-9A-Z])[A-Z](?: [A-Z])+(?![0-9A-Z])")
_ALNUM = re.compile(r"[0-9A-Z]")
_ASCII_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
# "SMITH, JOHN" becomes "JOHN SMITH" only when nothing suggests an organisation.
_NOT_A_PERSON = frozenset(
    set(LEGAL_SUFFIXES)
    | {"THE", "AND", "OF", "FOR", "COUNTY", "CITY", "TOWN", "VILLAGE", "STATE", "DEPARTMENT", "DEPT"}
)
_NAME_GENERATIONS = frozenset({"JR", "SR", "II", "III", "IV"})


@dataclass(frozen=True, slots=True)
class NormalizedName:
    """A name in canonical form.

    ``key`` is the matching string (tokens joined by spaces, legal suffixes removed);
    ``aliases`` are keys of other names found in the same string (after DBA / AKA);
    ``legal_suffixes`` are the canonical legal forms that were removed (a classifier hint);
    ``display`` is the input cleaned of control characters and extra spaces.
    """

    key: str
    tokens: tuple[str, ...]
    legal_suffixes: tuple[str, ...]
    aliases: tuple[str, ...]
    display: str


def _fold(raw: str) -> str:
    """Upper-case ASCII-ish text: accents and compatibility forms folded, controls made spaces."""
    text = raw[:MAX_INPUT_CHARS]
    if text.isascii():  # the common case, without a Python-level loop per character
        return (text if text.isprintable() else _ASCII_CONTROLS.sub(" ", text)).upper()
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(
        " " if unicodedata.category(ch)[0] == "C" else ch
        for ch in decomposed
        if not unicodedata.combining(ch)
    )
    # NFKD can expand characters (ligatures, fractions); cap again.
    return kept.upper()[:MAX_INPUT_CHARS]


def _may_name_another(text: str) -> bool:
    """Whether ``text`` has what every alias marker has (most names have none)."""
    return "/" in text or "DBA" in text or "AKA" in text or "FKA" in text


def _may_route(text: str) -> bool:
    """Whether ``text`` has what every routing marker has."""
    return "/" in text or "%" in text or "C-O" in text or "ATT" in text or "REMIT" in text or "BOX" in text


def _display(raw: str) -> str:
    text = raw[:MAX_INPUT_CHARS]
    if text.isascii():
        return " ".join((text if text.isprintable() else _ASCII_CONTROLS.sub(" ", text)).split())
    return " ".join("".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text).split())


def _swap_person_order(text: str) -> str:
    """'SMITH, JOHN A' → 'JOHN A SMITH' when the text looks like a surname-first person."""
    if text.count(",") != 1:
        return text
    before, after = (part.split() for part in text.split(","))
    surname = [token for token in before if token not in _NAME_GENERATIONS]
    given = [token for token in after if token not in _NAME_GENERATIONS]
    if not (len(surname) == 1 and 1 <= len(given) <= 3):
        return text
    if any(_NON_ALNUM.sub("", token) in _NOT_A_PERSON for token in before + after):
        return text
    if len(after) == 1 and after[0] in US_STATE_CODES:  # "SPRINGFIELD, IL" is a place
        return text
    return " ".join(after + before)


def _tokens(text: str) -> list[str]:
    # Each rewrite runs only when its character is there: most names have none of them.
    if "." in text:
        text = _DOTTED_INITIALS.sub(lambda found: found.group(0).replace(".", ""), text)
    if "&" in text:
        text = _AMPERSAND_INITIALS.sub(r"\1\2", text).replace("&", " AND ")  # AT&T, A&M: one token
    text = _APOSTROPHES.sub("", text)
    # Runs of single letters are one initialism: "D A R E" = "DARE", "L L C" = "LLC".
    merged = _LETTER_RUN.sub(_unspaced, _NON_ALNUM.sub(" ", text)).split()
    return [_CANONICAL_WORDS.get(token, token) for token in merged]


def _unspaced(found: re.Match[str]) -> str:
    return found.group(0).replace(" ", "")


def _misspelt_legal_form(token: str) -> str | None:
    """'INCORPOATED', 'CORPORATOIN': a long legal form one edit away (two for the longest)."""
    for form, canonical in _LONG_LEGAL_FORMS_BY_INITIAL.get(token[0], ()):
        if abs(len(form) - len(token)) > 2:
            continue
        allowed = 2 if min(len(form), len(token)) >= _MIN_TWO_TYPO_SUFFIX else 1
        if DamerauLevenshtein.distance(token, form, score_cutoff=allowed) <= allowed:
            return canonical
    return None


def _legal_form(token: str, last: bool, may_be_cut: bool) -> str | None:
    if token in LEGAL_SUFFIXES:
        return LEGAL_SUFFIXES[token]
    min_cut = _MIN_CUT_SUFFIX_IN_CUT_NAME if may_be_cut else _MIN_CUT_SUFFIX
    if last and len(token) >= min_cut and token not in _WORDS_NOT_CUT_FORMS:  # cut by a fixed-width field
        cut = _CUT_LEGAL_FORMS.get(token)
        if cut is not None or len(token) < _MIN_MISSPELT_SUFFIX:
            return cut
        return _misspelt_legal_form(token)
    return None


def _cut_second_legal_form(tokens: list[str]) -> bool:
    """'…TECHNOLOGY CO., LT': the field ended inside a second legal form after a first one."""
    last = tokens[-1]
    return (
        len(tokens) > 2
        and tokens[-2] in LEGAL_SUFFIXES
        and last not in LEGAL_SUFFIXES
        and any(spelling.startswith(last) for spelling in LEGAL_SUFFIXES)
    )


def _strip_legal_suffixes(tokens: list[str], may_be_cut: bool) -> tuple[list[str], list[str]]:
    found: list[str] = []
    if may_be_cut and _legal_form(tokens[-1], True, may_be_cut) is None and _cut_second_legal_form(tokens):
        tokens.pop()  # which form it began is unknown: not reported
    while len(tokens) > 1 and (form := _legal_form(tokens[-1], not found, may_be_cut)) is not None:
        tokens.pop()
        found.append(form)
    # "ACME INC OF DELAWARE" is rare; "ACME, INC." and "ACME CO., LTD." are the common forms.
    return tokens, found[::-1]


def _strip_article(tokens: list[str]) -> list[str]:
    if len(tokens) > 1 and tokens[0] == "THE":
        tokens = tokens[1:]
    if len(tokens) > 1 and tokens[-1] == "THE":  # "LEGION, THE"
        tokens = tokens[:-1]
    return tokens


def _canonical_tokens(text: str, may_be_cut: bool) -> tuple[list[str], list[str]]:
    return _strip_legal_suffixes(_strip_article(_tokens(_swap_person_order(text))), may_be_cut)


def normalize_name(raw: str) -> NormalizedName:
    """Canonical form of a payee or supplier name (see module docstring); never raises."""
    if not isinstance(raw, str):
        raw = ""
    return _normalize_name_text(raw)


# The worker normalises each payee name twice (its result's key, then the matcher's query), and
# a payee recurs on every payment.
@functools.lru_cache(maxsize=1 << 14)
def _normalize_name_text(raw: str) -> NormalizedName:
    text = _LEADING_ROUTING.sub("", _fold(raw))
    routing = _ROUTING_MARKER.search(text) if _may_route(text) else None
    if routing is not None and text[: routing.start()].strip():
        text = text[: routing.start()]
    split = _ALIAS_MARKER.split(text) if _may_name_another(text) else [text]
    parts = [part for part in split if _ALNUM.search(part)]
    if not parts:
        return NormalizedName(key="", tokens=(), legal_suffixes=(), aliases=(), display=_display(raw))
    # A fixed-width field is cut at its end: only the last part of a long one may be.
    field_may_be_cut = len(text.strip()) >= CUT_NAME_MIN_CHARS
    tokens, suffixes = _canonical_tokens(parts[0], field_may_be_cut and len(parts) == 1)
    aliases = []
    for position, part in enumerate(parts[1:], start=2):
        alias_tokens, alias_suffixes = _canonical_tokens(part, field_may_be_cut and position == len(parts))
        if alias_tokens:
            aliases.append(" ".join(alias_tokens))
            suffixes.extend(suffix for suffix in alias_suffixes if suffix not in suffixes)
    return NormalizedName(
        key=" ".join(tokens),
        tokens=tuple(tokens),
        legal_suffixes=tuple(suffixes),
        aliases=tuple(alias for alias in aliases if alias != " ".join(tokens)),
        display=_display(raw),
    )


# Legal forms a clerk glues to the previous word or slips on ("MISSIONINC", "IINC", "CMOPANY").
_LOOSE_LEGAL_FORMS = ("INC", "LLC", "LTD", "CORP", "COMPANY", "LIMITED", "CORPORATION", "INCORPORATED")
# Long forms are read through any one edit; short ones only through the slips that make no
# common word: a doubled letter, two letters swapped, the first letter lost ("NC") — never
# a substitution, which would read HOLIDAY INN or ACME INK as a legal form.
_MIN_ANY_EDIT_FORM = 7
_SHORT_FORM_SLIPS = frozenset(
    slip
    for form in _LOOSE_LEGAL_FORMS
    if len(form) < _MIN_ANY_EDIT_FORM
    for slip in (
        form[1:],
        *(form[: i + 1] + form[i:] for i in range(len(form))),
        *(form[:i] + form[i + 1] + form[i] + form[i + 2 :] for i in range(len(form) - 1)),
    )
)
# A glued remainder shorter than this may be a word that merely ends like a legal form ("ZINC").
_MIN_GLUED_REMAINDER = 4
_MIN_GLUED_ARTICLE_REMAINDER = 6


def _slipped_legal_form(token: str) -> bool:
    return token in _SHORT_FORM_SLIPS or any(
        len(form) >= _MIN_ANY_EDIT_FORM
        and abs(len(form) - len(token)) <= 1
        and DamerauLevenshtein.distance(token, form, score_cutoff=1) <= 1
        for form in _LOOSE_LEGAL_FORMS
    )


def loose_keys(key: str) -> tuple[str, ...]:
    """Readings of a key with slips the strict rules leave alone, as extra matching queries.

    Up to two trailing slipped legal forms are dropped ("ACME CMOPANY" → "ACME"), and a
    legal form or leading THE glued on by a shifted space is cut from the spaceless key
    ("BETHESDA MISSIONINC" → "BETHESDAMISSION", matched against names' spaceless keys). They are
    only extra queries, never the key: the strict reading is still scored too.
    """
    tokens = key.split()
    readings = []
    dropped = tokens[:]
    while len(dropped) > 1 and len(tokens) - len(dropped) < 2 and _slipped_legal_form(dropped[-1]):
        dropped.pop()
    if len(dropped) < len(tokens):
        readings.append(" ".join(dropped))
    compact = key.replace(" ", "")
    unglued = compact
    form = next((form for form in _LOOSE_LEGAL_FORMS if unglued.endswith(form)), None)
    if form is not None and len(unglued) - len(form) >= _MIN_GLUED_REMAINDER:
        unglued = unglued[: -len(form)]
    if unglued.startswith("THE") and len(unglued) - 3 >= _MIN_GLUED_ARTICLE_REMAINDER:
        unglued = unglued[3:]
    if unglued != compact:
        readings.append(unglued)
    return tuple(readings)


def normalize_place(raw: str | None) -> str:
    """Canonical city / state text: the same folding and tokenisation as names, no suffix rules."""
    if not raw or not isinstance(raw, str):
        return ""
    return _normalize_place_text(raw)


@functools.lru_cache(maxsize=1 << 16)  # a few thousand towns recur across every list
def _normalize_place_text(raw: str) -> str:
    return " ".join(_NON_ALNUM.sub(" ", _APOSTROPHES.sub("", _fold(raw))).split())


def normalize_postal_code(raw: str | None) -> str:
    """The five-digit US ZIP, or the first alphanumerics of a foreign code ('' if none)."""
    if not raw or not isinstance(raw, str):
        return ""
    compact = _NON_ALNUM.sub("", _fold(raw))
    if compact.isdigit():
        return compact[:5] if compact.strip("0") else ""
    return compact[:10]
