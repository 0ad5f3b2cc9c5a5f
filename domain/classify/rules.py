"""Deterministic rule layer: organisation words, government patterns and person-name structure.

Evidence from every family is summed per entity type; the best-supported type wins and the margin
over the runner-up sets the confidence. No network, no randomness: the same name always gets the same
answer, which keeps results reproducible and cacheable downstream.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache

from rapidfuzz.distance import Levenshtein

from domain.matching.world import zipf

from . import commerce, lexicon
from domain.census_names import NameFrequencies, name_frequencies
from .lexicon import Evidence
from .result import Classification
from .sic import sic_description
from .text import has_digit, tokenize
from .token_model import token_model

# Bump whenever the rules, word lists or weights change: stored results carry it.
RULES_VERSION = "2026.2"

_MAX_PHRASE_LENGTH = max(len(phrase) for phrase in lexicon.PHRASES)
_CARE_OF = re.compile(r"\b(?:C/O|C\\O|CARE OF|ATTN:?|ATTENTION|FBO|F/B/O)\b", re.IGNORECASE)
_DOING_BUSINESS_AS = re.compile(r"\b(?:DBA|D/B/A|D\.B\.A\.?|D B A|T/A|TRADING AS)\b", re.IGNORECASE)
# Surnames at least this common (percent of population) weaken a business word they coincide with.
_COMMON_SURNAME_SHARE = 0.005
# A given name this common (percent) followed by an S, itself no surname this common, opens a possessive
# trade name whose apostrophe was dropped ("BOBS", "JOES"; not "TOMS", "GEORGES", "CURTISS").
_COMMON_GIVEN_SHARE = 0.01
_RARE_SURNAME_SHARE = 0.001
_FUZZY_MIN_LENGTH = 5
# Below this much support for any reading, only the shape of the name is left to go on.
_MIN_EVIDENCE = 0.75
# The learned word statistics count for less than hand-written evidence: a 4.0 log-odds word is worth
# about one business word.
_MODEL_WEIGHT = 0.5
# A place word that merely opens an organisation's name ("TRI-CITY SLUGGERS") is close to no evidence,
# and government needs more than that.
_NAMESAKE_WEIGHT = 0.6
_MIN_GOVERNMENT = 1.0
# "CITY OF ...", "TOWN O ..." (keying slip): a jurisdiction phrase that opens the name is the jurisdiction.
_OPENING_PREPOSITIONS = frozenset({"OF", "O", "OFF"})
_QUOTED_OR_BRACKETED = re.compile(r"\([^)]*\)|\[[^\]]*\]|\"[^\"]*\"")
# "A RAZORS EDGE", not the initial of "A. LAKHANI".
_LEADING_A = re.compile(r"\s*A\s+[A-Za-z]{2}")
_POSSESSIVE = re.compile(r"[A-Za-z]['\u2019]S\b", re.IGNORECASE)
_MAX_MODEL_LOG_ODDS = 8.0
# An industry-title word at the strongest log odds (4.0) is worth a little less than a hand-written
# business word (2.0).
_INDUSTRY_WORD_WEIGHT = 0.4
# Names that read as a person but could as well be a business ("HARRIS" alone, "SHERWIN WILLIAMS",
# "DAVID STEEL", "LIQING ZHANG"), or as a brand but could as well be a given name ("ARVIND", "ZOOMLY"),
# stay below the review threshold (0.75) and above the LLM threshold (0.70): a person looks at them.
_PERSON_OR_BUSINESS_CONFIDENCE = 0.72
# A given name the census does not list counts for about half a common census given name (1.6).
_UNLISTED_GIVEN_SCORE = 0.8
# A word seen this strongly in organisation names (log odds) is a brand, not a given name (AMAZON).
_LEARNED_BRAND_LOG_ODDS = 2.0
# Given names of other cultures are rare in English text (ARVIND 2.8, XIN 2.8, NGUYEN 3.2 Zipf);
# MODE, EMBRACE or BEAST are words, not names.
_UNLISTED_GIVEN_MAX_ZIPF = 3.5
# ASOCIACION, ORGANIZACION, FUNDATION: abstract nouns, never given names.
_ABSTRACT_NOUN_ENDINGS = ("CION", "TION")
# Beside such a given name, the surname must not be a word of organisation names as well
# (HOUSE, MUSIC, HAVEN: learned log odds >= 1): "VELTA MUSIC", "NUVI HOME" are no people.
_UNLISTED_SURNAME_MAX_LOG_ODDS = 1.0
# A business word this long opening or closing a one-word name makes it a compound brand (MISCOWATER).
_COMPOUND_PART_LENGTH = 5
_VOWELS = frozenset("AEIOUY")


@dataclass(slots=True)
class _Tally:
    score: float = 0.0
    evidence: list[tuple[int, Evidence, str]] = field(default_factory=list)
    # Named evidence at full strength (a legal form, a listed word or phrase, an agency, a known
    # brand), as against the shape of the name (digits, THE, a possessive, DBA, joined surnames) or
    # a listed word weakened because it is also a surname or a place name.
    named: bool = False

    def add(
        self, position: int, evidence: Evidence, label: str, weight: float | None = None, named: bool = False
    ) -> None:
        self.score += evidence.weight if weight is None else weight
        self.evidence.append((position, evidence, label))
        self.named = self.named or (named and (weight is None or weight >= evidence.weight))


@cache
def _fuzzy_index() -> dict[str, frozenset[str]]:
    """Single-deletion variants of every keyword, so a token one keystroke away finds its keyword."""
    # Four-letter keywords (CITY) are reachable only from longer tokens (CITTY), by one insertion.
    shortest = _FUZZY_MIN_LENGTH - 1
    keywords = {word for word in lexicon.WORDS if len(word) >= shortest}
    keywords |= {word for phrase in lexicon.PHRASES for word in phrase if len(word) >= shortest}
    keywords |= {word for word in lexicon.LEGAL_SUFFIXES if len(word) >= shortest}
    index: dict[str, set[str]] = {}
    for keyword in keywords:
        index.setdefault(keyword, set()).add(keyword)
        for cut in range(len(keyword)):
            index.setdefault(keyword[:cut] + keyword[cut + 1 :], set()).add(keyword)
    return {variant: frozenset(found) for variant, found in index.items()}


def _known_token(token: str) -> bool:
    return (
        token in lexicon.WORDS
        or token in lexicon.LEGAL_SUFFIXES
        or token in lexicon.CONNECTORS
        or token in lexicon.AGENCY_ACRONYMS
        or token in lexicon.BRANDS
    )


def _correct_typo(token: str, names: NameFrequencies) -> str | None:
    """The keyword a misspelt token stands for (one insertion, deletion or substitution away), if unique."""
    if len(token) < _FUZZY_MIN_LENGTH or not token.isalpha() or names.is_name(token):
        return None
    return _keyword_one_edit_from(token)


# Pure in the token, and a payment file's names share most of their words.
@lru_cache(maxsize=1 << 16)
def _keyword_one_edit_from(token: str) -> str | None:
    index = _fuzzy_index()
    candidates: set[str] = set(index.get(token, ()))
    for cut in range(len(token)):
        shorter = token[:cut] + token[cut + 1 :]
        candidates.update(index.get(shorter, ()))
    # Deletions on both sides can meet two edits apart (COEUR / COURT): keep true one-edit matches.
    candidates = {candidate for candidate in candidates if Levenshtein.distance(token, candidate) <= 1}
    return next(iter(candidates)) if len(candidates) == 1 else None


def _normalise_tokens(tokens: tuple[str, ...], names: NameFrequencies) -> tuple[list[str], list[str]]:
    """Joins spelt-out legal forms (L L C), then corrects keyword typos; returns the joined tokens
    as typed and as corrected (a word a keyword away may be a given name: LIQING, not LIVING)."""
    joined: list[str] = []
    position = 0
    while position < len(tokens):
        run_end = position
        while run_end < len(tokens) and len(tokens[run_end]) == 1 and tokens[run_end].isalpha():
            run_end += 1
        letters = "".join(tokens[position:run_end])
        if run_end - position >= 2 and (letters in lexicon.LEGAL_SUFFIXES or letters == "DBA"):
            joined.append(letters)
            position = run_end
        else:
            joined.append(tokens[position])
            position += 1
    corrected = list(joined)
    for index, token in enumerate(joined):
        if not _known_token(token):
            corrected[index] = _correct_typo(token, names) or token
    return joined, corrected


def _looks_like_brand_word(token: str, names: NameFrequencies) -> bool:
    if len(token) < 6 or not token.isalpha() or names.is_name(token):
        return False
    return _shaped_like_organisation_words(token)


@lru_cache(maxsize=1 << 16)
def _shaped_like_organisation_words(token: str) -> bool:
    return any(
        token.endswith(end) and len(token) >= len(end) + 3 for end in lexicon.ORGANISATION_WORD_ENDINGS
    ) or any(
        token.startswith(start) and len(token) >= len(start) + 3 for start in lexicon.ORGANISATION_WORD_STARTS
    )


_DIGIT_EVIDENCE = Evidence("business", 1.0)
_ARTICLE_EVIDENCE = Evidence("business", 1.5)
_POSSESSIVE_EVIDENCE = Evidence("business", 1.5)
_POSSESSIVE_LABEL = "possessive trade name"
_FIRM_EVIDENCE = Evidence("business", 2.5, "8111")
_BRAND_WORD_EVIDENCE = Evidence("business", 1.5)
_LEGAL_FORM_EVIDENCE = Evidence("business", 3.5)
# A private person almost never appears in a payment file as one word that is no census name.
_SINGLE_WORD_EVIDENCE = Evidence("business", 2.0)
_FOREIGN_TRADE_EVIDENCE = Evidence("business", 2.0)
_MADE_BY_EVIDENCE = Evidence("business", 2.5)
_BRAND_AND_PLACE_EVIDENCE = Evidence("business", 1.5)


@dataclass(frozen=True, slots=True)
class _PersonReading:
    """Positions of the words that read as a person's names, and whether the reading is ambiguous."""

    positions: frozenset[int]
    surname: int
    comma_form: bool
    # The given-name slot holds a word more common as a surname ("SHERWIN WILLIAMS").
    surname_as_given: bool
    # Positions of given names the census does not list ("LIQING ZHANG"): a weaker reading.
    unlisted_given: frozenset[int] = frozenset()


def _collect_evidence(
    tokens: list[str], names: NameFrequencies, reading: _PersonReading | None
) -> dict[str, _Tally]:
    # Commercial vocabulary and shapes are kept apart: they count only where government words do not.
    tallies = {"business": _Tally(), "government": _Tally(), "commerce": _Tally()}
    position = 0
    while position < len(tokens):
        for length in range(min(_MAX_PHRASE_LENGTH, len(tokens) - position), 1, -1):
            phrase = tuple(tokens[position : position + length])
            evidence = lexicon.PHRASES.get(phrase)
            if evidence is not None:
                weight = evidence.weight
                if evidence.jurisdiction and not (
                    (position == 0 and phrase[-1] in _OPENING_PREPOSITIONS)
                    or _ends_name(tokens, position + length)
                ):
                    weight = _NAMESAKE_WEIGHT
                tallies[evidence.entity_type].add(position, evidence, " ".join(phrase), weight, named=True)
                position += length
                break
        else:
            _add_word_evidence(tallies, tokens, position, names, reading)
            position += 1
    return tallies


def _ends_name(tokens: list[str], start: int) -> bool:
    """True when nothing but places and government words follow: 'LINCOLN COUNTY NE GOVERNMENT'."""
    for token in tokens[start:]:
        evidence = lexicon.WORDS.get(token)
        if (
            token not in lexicon.US_STATES
            and token not in lexicon.CONNECTORS
            and not (evidence is not None and evidence.jurisdiction)
        ):
            return False
    return True


def _add_word_evidence(
    tallies: dict[str, _Tally],
    tokens: list[str],
    position: int,
    names: NameFrequencies,
    reading: _PersonReading | None,
) -> None:
    token = tokens[position]
    last = len(tokens) - 1
    token_count = len(tokens)
    if token in lexicon.LEGAL_SUFFIXES and position > 0:
        if token not in lexicon.TRAILING_ONLY_SUFFIXES or position == last:
            tallies["business"].add(position, _LEGAL_FORM_EVIDENCE, "legal form " + token, named=True)
        return
    evidence = lexicon.WORDS.get(token)
    if evidence is not None:
        # A word that is also a common surname (BARBER, CHURCH) is weaker evidence on its own.
        weight = evidence.weight
        if evidence.entity_type == "business" and names.last_frequency(token) >= _COMMON_SURNAME_SHARE:
            weight = min(weight, 1.0)
        if evidence.jurisdiction and not _ends_name(tokens, position + 1):
            weight = min(weight, _NAMESAKE_WEIGHT)
        tallies[evidence.entity_type].add(position, evidence, token, weight, named=True)
        return
    acronym = lexicon.AGENCY_ACRONYMS.get(token)
    if acronym is not None:
        weight = acronym.weight if token_count == 1 or position == 0 else acronym.weight / 2
        tallies["government"].add(position, acronym, "agency " + token, weight, named=True)
        return
    brand_sic = lexicon.BRANDS.get(token)
    if brand_sic is not None:
        ambiguous = token in lexicon.AMBIGUOUS_BRANDS
        brand = Evidence("business", 1.0 if ambiguous else 3.0, brand_sic)
        tallies["business"].add(position, brand, "known brand " + token, named=not ambiguous)
        return
    if has_digit(token):
        tallies["business"].add(position, _DIGIT_EVIDENCE, "number in name")
        return
    # A census name read as part of a person's name ("DAVID STEEL", "JOHN PARK"), or standing alone
    # ("GLASS"), is that name.
    if (reading is not None and position in reading.positions) or (token_count == 1 and names.is_name(token)):
        return
    if commerce.is_foreign_trade_word(token, names.is_name(token)):
        tallies["commerce"].add(position, _FOREIGN_TRADE_EVIDENCE, "foreign-language trade word")
        return
    industry = _industry_word(token)
    if industry is not None:
        evidence = Evidence("business", _INDUSTRY_WORD_WEIGHT * industry.log_odds, industry.sic_code)
        tallies["commerce"].add(position, evidence, "industry word " + token)
    elif _looks_like_brand_word(token, names):
        tallies["business"].add(position, _BRAND_WORD_EVIDENCE, "brand-style word")


def _industry_word(token: str) -> commerce.IndustryWord | None:
    industry = commerce.industry_words().get(token)
    return industry if industry is not None and industry.log_odds > 0 else None


@cache
def _census_name_edges() -> tuple[frozenset[str], frozenset[str]]:
    """The first two and the last two letters of every census given name and surname."""
    names = name_frequencies()
    every = [name for name in (*names.first, *names.last) if len(name) >= 2]
    return frozenset(name[:2] for name in every), frozenset(name[-2:] for name in every)


def _edges_like_a_name(token: str) -> bool:
    """Opens and ends as some census name does: not MCESD, ZETX, NLEOMF."""
    openings, endings = _census_name_edges()
    return token[:2] in openings and token[-2:] in endings


def _may_be_unlisted_given_name(typed: str, corrected: str, names: NameFrequencies) -> bool:
    """A word no census list holds, shaped like a name and carrying no organisation evidence: a given
    name of a culture the 1990 US census hardly covers (LIQING, ARVIND, ZHIWEI). `corrected` is the
    keyword it is one typo away from, if any: a typo of a listed organisation word is that word."""
    return (
        len(typed) >= 2
        and typed.isalpha()
        and not _VOWELS.isdisjoint(typed)
        and not names.is_name(typed)
        and not _known_token(typed)
        and typed not in lexicon.US_STATES
        and corrected not in lexicon.WORDS
        and corrected not in lexicon.LEGAL_SUFFIXES
        and not commerce.is_foreign_trade_word(typed, False)
        and _industry_word(typed) is None
        and not _looks_like_brand_word(typed, names)
        and zipf(typed) < _UNLISTED_GIVEN_MAX_ZIPF
        and not typed.endswith(_ABSTRACT_NOUN_ENDINGS)
        and _edges_like_a_name(typed)
    )


def _free_of_organisation_words(token: str) -> bool:
    """No listed organisation or government word, nor an industry word: TEMPLE in "TEMPLE BNAI ISRAEL"."""
    return token not in lexicon.WORDS and _industry_word(token) is None


def _plain_surname(token: str, names: NameFrequencies) -> bool:
    """A surname that organisation names do not use as a word and that is no city: ZHANG, LI, PATEL,
    not HOUSE, nor TEMPE in "SIGNARAMA TEMPE"."""
    return token_model().words.get(token, 0.0) < _UNLISTED_SURNAME_MAX_LOG_ODDS and not _city((token,), names)


def _joins_surnames_only(tokens: list[str], names: NameFrequencies) -> bool:
    """'FLEMING & ULKUS', 'MITCHELL, MITCHELL & BRADLEY': partners' surnames make a firm name, whereas
    'JOHN & MARY SMITH' or 'MR & MRS' join people."""
    if "&" not in tokens and "AND" not in tokens:
        return False
    parties: list[list[str]] = [[]]
    for token in tokens:
        if token in ("&", "AND"):
            parties.append([])
        else:
            parties[-1].append(token)
    if len(parties) < 2 or any(not party for party in parties):
        return False
    known_surname_opener = False
    for index, party in enumerate(parties):
        opener = party[0]
        given_first = names.first_frequency(opener) > names.last_frequency(opener)
        lone_last_word = len(party) == 1 and index == len(parties) - 1
        if len(opener) == 1 or opener in lexicon.TITLES or (given_first and not lone_last_word):
            return False
        known_surname_opener = known_surname_opener or (names.is_name(opener) and not given_first)
    return known_surname_opener


def _given_name_score(token: str, names: NameFrequencies) -> float:
    if len(token) == 1:
        return 0.6
    share = names.first_frequency(token)
    if share >= 0.01:
        return 1.6
    return 1.1 if share > 0 else 0.0


def _surname_score(token: str, names: NameFrequencies) -> float:
    if len(token) == 1:
        return -0.3
    share = names.last_frequency(token)
    if share >= 0.001:
        return 1.5
    return 1.0 if share > 0 else 0.0


def _middle_score(token: str, names: NameFrequencies) -> float:
    if len(token) == 1 or names.is_name(token):
        return 0.3
    return -0.2


def _person_score(tokens: list[str], comma_split: int | None, names: NameFrequencies) -> tuple[float, bool]:
    """How much the tokens look like a person's name; second value: a personal title was present."""
    titled = False
    core: list[str] = []
    comma_core: int | None = None
    for index, token in enumerate(tokens):
        if index == comma_split:
            comma_core = len(core)
        if token in lexicon.TITLES and index == 0:
            titled = True
        elif token in lexicon.GENERATIONAL_SUFFIXES or (token in lexicon.CREDENTIALS and index > 0):
            continue
        elif token in lexicon.SURNAME_PARTICLES and 0 < index < len(tokens) - 1:
            continue
        elif token in ("&", "AND"):
            # "JOHN & MARY SMITH": joint payees; the shared surname decides.
            continue
        elif token in lexicon.TITLES:
            continue
        else:
            if has_digit(token) or (len(token) > 1 and token in lexicon.CONNECTORS):
                return 0.0, titled
            core.append(token)
    if not core or len(core) > 5:
        return 0.0, titled
    title_bonus = 2.0 if titled else 0.0
    if len(core) == 1:
        token = core[0]
        return (0.8 if len(token) > 1 and names.is_name(token) else 0.0) + title_bonus, titled
    orderings = [(core[0], core[-1], core[1:-1]), (core[1], core[0], core[2:])]
    if comma_core is not None and 0 < comma_core < len(core):
        orderings = [(core[comma_core], core[comma_core - 1], core[comma_core + 1 :])]
    best = max(
        _given_name_score(given, names)
        + _surname_score(surname, names)
        + sum(_middle_score(middle, names) for middle in middles)
        for given, surname, middles in orderings
    )
    return best + title_bonus, titled


def _person_reading(
    tokens: list[str], typed: list[str], comma_split: int | None, names: NameFrequencies
) -> _PersonReading | None:
    """The person's-name reading of the words, if they really are census given names and surnames in
    a person's order: GIVEN [MIDDLE...] SURNAME, SURNAME, GIVEN [MIDDLE] or SURNAME GIVEN INITIAL.
    Failing that, up to three words free of organisation words, with a census surname and given names
    no census lists: GIVEN [MIDDLE] SURNAME, SURNAME, GIVEN [MIDDLE] or SURNAME GIVEN [MIDDLE]
    ("LIQING ZHANG", "ZHANG, LIQING", "ZHANG LIQING"). `typed` holds the words before typo correction."""
    core: list[int] = []
    comma_core: int | None = None
    # "VAN LOAN", "DE LA ROSA": the word after a particle is a surname.
    particle_surnames: set[int] = set()
    for index, token in enumerate(tokens):
        if index == comma_split:
            comma_core = len(core)
        if (
            token in lexicon.TITLES
            or token in lexicon.GENERATIONAL_SUFFIXES
            or token in ("&", "AND")
            or (token in lexicon.CREDENTIALS and index > 0)
            or (token in lexicon.SURNAME_PARTICLES and 0 < index < len(tokens) - 1)
        ):
            continue
        if has_digit(token) or (len(token) > 1 and token in lexicon.CONNECTORS):
            return None
        core.append(index)
        if index > 1 and tokens[index - 1] in lexicon.SURNAME_PARTICLES:
            particle_surnames.add(index)
    if not 2 <= len(core) <= 5:
        return None

    def given(index: int) -> bool:
        return len(tokens[index]) == 1 or tokens[index] in names.first

    def surname(index: int) -> bool:
        return len(tokens[index]) > 1 and (tokens[index] in names.last or index in particle_surnames)

    def middle(index: int) -> bool:
        return len(tokens[index]) == 1 or names.is_name(tokens[index])

    def reading(given_at: int, surname_at: int, comma_form: bool) -> _PersonReading:
        given_word = tokens[given_at]
        surname_as_given = len(given_word) > 1 and names.last_frequency(given_word) > names.first_frequency(
            given_word
        )
        return _PersonReading(frozenset(core), surname_at, comma_form, surname_as_given)

    comma_form = comma_core is not None and 0 < comma_core < len(core)
    if comma_form:
        surname_at, given_at = core[comma_core - 1], core[comma_core]
        if given(given_at) and surname(surname_at) and all(middle(i) for i in core[comma_core + 1 :]):
            return reading(given_at, surname_at, True)
    elif given(core[0]) and surname(core[-1]) and all(middle(i) for i in core[1:-1]):
        return reading(core[0], core[-1], False)
    # Without a comma, surname first only with initials after the given name ("TALBOT TERESE W"):
    # "CASA LUPITA" is no reversed name.
    elif (
        len(core) > 2
        and surname(core[0])
        and given(core[1])
        and all(len(tokens[i]) == 1 for i in core[2:])
    ):
        return reading(core[1], core[0], False)

    unlisted = frozenset(i for i in core if _may_be_unlisted_given_name(typed[i], tokens[i], names))
    if not unlisted or len(core) > 3 or not all(_free_of_organisation_words(typed[i]) for i in core):
        return None

    def unlisted_reading(surname_at: int, is_comma_form: bool) -> _PersonReading:
        return _PersonReading(frozenset(core), surname_at, is_comma_form, False, unlisted)

    def given_or_unlisted(index: int) -> bool:
        return given(index) or index in unlisted

    def plain_surname(index: int) -> bool:
        # A census surname itself, not a word made one by a particle before it ("DE ...").
        return index not in unlisted and tokens[index] in names.last and _plain_surname(tokens[index], names)

    if comma_form:
        if comma_core == 1 and plain_surname(core[0]) and all(given_or_unlisted(i) for i in core[1:]):
            return unlisted_reading(core[0], True)
        return None
    if (
        given_or_unlisted(core[0])
        and plain_surname(core[-1])
        and all(middle(i) or i in unlisted for i in core[1:-1])
    ):
        return unlisted_reading(core[-1], False)
    # Surname first without a comma ("ZHANG LIQING") only with a surname of some currency that is no
    # given name: MONTE (a given name) opens place names, a rare surname opens many a shop name.
    surname_first = tokens[core[0]]
    if (
        plain_surname(core[0])
        and surname_first not in names.first
        and names.last_frequency(surname_first) >= _RARE_SURNAME_SHARE
        and all(i in unlisted for i in core[1:])
    ):
        return unlisted_reading(core[0], False)
    return None


def _shape_evidence(
    tokens: list[str],
    names: NameFrequencies,
    reading: _PersonReading | None,
    business: _Tally,
    article_a: bool,
) -> None:
    """Evidence from how a trade name is built rather than from its words."""
    if len(tokens) == 1:
        return
    if "BY" in tokens[1:-1]:
        # "FINE FLOWERS BY JANE": a trade made or run by someone.
        business.add(tokens.index("BY", 1), _MADE_BY_EVIDENCE, "trade name BY a person")
    if reading is not None:
        return
    opener = tokens[0]
    stem = opener[:-1]
    if (
        opener.endswith("S")
        and len(stem) >= 3
        and names.first_frequency(stem) >= _COMMON_GIVEN_SHARE
        and opener not in names.first
        and names.last_frequency(opener) < _RARE_SURNAME_SHARE
    ):
        # "BOBS DESSERTS", "JOES AUTO": a possessive whose apostrophe was dropped.
        business.add(0, _POSSESSIVE_EVIDENCE, _POSSESSIVE_LABEL)
    if article_a and len(tokens) >= 3 and names.first_frequency(tokens[1]) < _COMMON_GIVEN_SHARE:
        business.add(0, _ARTICLE_EVIDENCE, "leading A")
    if _names_a_place(tokens, names):
        business.add(0, _BRAND_AND_PLACE_EVIDENCE, "name and a US city")


def _city(words: tuple[str, ...], names: NameFrequencies) -> bool:
    """A US city. A one-word city that is also a given name or a surname of some currency (NORMAN,
    AUSTIN, HENDERSON) may be a person's name and does not count."""
    if words not in commerce.us_places():
        return False
    word = words[0]
    rare_name = word not in names.first and names.last_frequency(word) < _RARE_SURNAME_SHARE
    return len(words) > 1 or rare_name


def _names_a_place(tokens: list[str], names: NameFrequencies) -> bool:
    """'SIGNARAMA TEMPE', 'LAS VEGAS ZENITH': a brand and a city."""

    def given_names_only(words: list[str]) -> bool:
        # "NATALIE SUMMIT": a given name and a surname that happens to be a city.
        return all(len(word) == 1 or word in names.first for word in words)

    return any(
        (_city(tuple(tokens[-length:]), names) and not given_names_only(tokens[:-length]))
        or (_city(tuple(tokens[:length]), names) and not given_names_only(tokens[length:]))
        for length in range(min(3, len(tokens) - 1), 0, -1)
    )


def _confidence(best: float, runner_up: float) -> float:
    margin = best - runner_up
    by_margin = 1.0 - 0.5 * math.exp(-margin)
    by_strength = 0.55 + 0.12 * best
    return round(max(0.5, min(0.99, by_margin, by_strength)), 3)


def _pick(evidence: list[tuple[int, Evidence, str]], attribute: str) -> str | None:
    """The attribute from the strongest evidence that has one; ties go to the later word (the head noun)."""
    best: tuple[float, int, str] | None = None
    for position, item, _ in evidence:
        value = getattr(item, attribute)
        if value is not None and (best is None or (item.weight, position) >= best[:2]):
            best = (item.weight, position, value)
    return None if best is None else best[2]


def _labels(evidence: list[tuple[int, Evidence, str]]) -> str:
    seen: list[str] = []
    for _, _, label in evidence:
        if label not in seen:
            seen.append(label)
    return ", ".join(seen[:4])


def _organisation_result(
    entity_type: str, tally: _Tally, confidence: float, method: str, prefix: str
) -> Classification:
    sic_code = _pick(tally.evidence, "sic_code")
    subtype = _pick(tally.evidence, "subtype")
    if (
        subtype is None
        and entity_type == "business"
        and any(item.subtype == lexicon.NONPROFIT for _, item, _ in tally.evidence)
    ):
        subtype = lexicon.NONPROFIT
    return Classification(
        entity_type=entity_type,
        subtype=subtype,
        sic_code=sic_code,
        sic_description=sic_description(sic_code),
        confidence=confidence,
        method=method,
        reason=f"{prefix}{_labels(tally.evidence)}",
        organisation_evidence=tally.named,
    )


def _first_party(name: str) -> str:
    """Cuts 'care of' / 'attention' / 'for benefit of' tails: the payee is the party before them."""
    match = _CARE_OF.search(name)
    if match is not None and match.start() > 0:
        return name[: match.start()]
    return name


def classify_text(name: str) -> Classification:
    names = name_frequencies()
    payee = _first_party(name)
    # Nicknames and asides ("(f.k.a. ...)", '"The Hoya Destroya"') are not the payee's name.
    payee = _QUOTED_OR_BRACKETED.sub(" ", payee) if _QUOTED_OR_BRACKETED.sub("", payee).strip() else payee
    doing_business_as = _DOING_BUSINESS_AS.search(payee) is not None
    possessive = _POSSESSIVE.search(payee) is not None
    article_a = _LEADING_A.match(payee) is not None
    text = tokenize(payee)
    typed, tokens = _normalise_tokens(text.tokens, names)
    leading_article = len(tokens) > 1 and tokens[0] == "THE"
    if leading_article:
        typed, tokens = typed[1:], tokens[1:]
    if not tokens:
        return Classification("unknown", None, None, None, 0.0, "rules", "no letters or digits in name")

    estate = len(tokens) > 2 and tuple(tokens[:2]) in lexicon.ESTATE_MARKERS
    if estate:
        typed, tokens = typed[2:], tokens[2:]
    comma_split = text.comma_split if len(tokens) == len(text.tokens) else None
    reading = _person_reading(tokens, typed, comma_split, names)
    if reading is not None and reading.unlisted_given:
        # The given names stand as typed: LIQING is no misspelt LIVING.
        tokens = list(typed)
    corrections = sum(typed_word != word for typed_word, word in zip(typed, tokens, strict=True))
    tallies = _collect_evidence(tokens, names, reading)
    business, government, commercial = tallies["business"], tallies["government"], tallies["commerce"]
    _shape_evidence(tokens, names, reading, commercial, article_a)
    if government.score < _MIN_GOVERNMENT:
        for position, evidence, label in commercial.evidence:
            business.add(position, evidence, label)
    lone_word = len(tokens) == 1 and tokens[0] not in lexicon.TITLES
    single_word_only = False
    if lone_word and not government.evidence and not names.is_name(tokens[0]):
        single_word_only = not business.evidence
        business.add(0, _SINGLE_WORD_EVIDENCE, "single-word name")
    if doing_business_as:
        business.add(0, Evidence("business", 4.0, None, "sole_proprietorship"), "trade name (DBA)")
    if leading_article:
        business.add(0, _ARTICLE_EVIDENCE, "leading THE")
    if possessive and all(label != _POSSESSIVE_LABEL for _, _, label in business.evidence):
        business.add(0, _POSSESSIVE_EVIDENCE, _POSSESSIVE_LABEL)
    if _joins_surnames_only(tokens, names):
        business.add(0, _FIRM_EVIDENCE, "surnames joined by &: firm name")
    person, titled = _person_score(tokens, comma_split, names)
    if reading is not None and reading.unlisted_given:
        person += _UNLISTED_GIVEN_SCORE
    # A person's name followed by organisation words names the organisation after the person
    # ("DAVID RICHARD GALLERY"): the organisation evidence counts against the person reading too.
    person = max(0.0, person - business.score - government.score)

    # Word statistics learned from supplier names say nothing about a given name no census lists:
    # foreign company names are full of them (XIN).
    model_log_odds = _model_log_odds(
        [token for index, token in enumerate(tokens) if reading is None or index not in reading.unlisted_given],
        names,
    )
    organisation_rules = max(business.score, government.score)
    organisation = organisation_rules + _MODEL_WEIGHT * max(0.0, model_log_odds)
    personal = person + _MODEL_WEIGHT * max(0.0, -model_log_odds)
    if max(organisation, personal) < _MIN_EVIDENCE:
        return _shape_fallback(tokens)

    typo_penalty = 0.05 * corrections
    if personal > organisation:
        method = "rules" if person > organisation_rules else "model"
        confidence = _bounded(_confidence(personal, organisation) - typo_penalty)
        if not titled and (leading_article or _could_be_a_business(tokens, reading, names)):
            confidence = min(confidence, _PERSON_OR_BUSINESS_CONFIDENCE)
        reason = "person-name structure (census given name / surname frequencies)"
        if reading is not None and reading.unlisted_given:
            reason = "person-name structure (census surname, given name the census does not list)"
        if titled:
            reason = "personal title and " + reason
        if method == "model":
            reason = "words typical of personal names (census) rather than organisation names"
        return Classification(
            "individual", "estate" if estate else None, None, None, confidence, method, reason
        )

    method = "rules" if organisation_rules >= person else "model"
    confidence = _confidence(organisation, personal)
    if business.score and government.score:
        confidence = min(confidence, _confidence(organisation_rules, min(business.score, government.score)))
    confidence = _bounded(confidence - typo_penalty)
    if single_word_only and not _commercial_single_word(tokens[0]):
        # "ZOOMLY" or "ARVIND": a brand, or a given name the census does not list.
        confidence = min(confidence, _PERSON_OR_BUSINESS_CONFIDENCE)
    if government.score > business.score and government.score >= _MIN_GOVERNMENT:
        return _organisation_result("government", government, confidence, method, "government words: ")
    if not business.evidence:
        return Classification(
            "business",
            None,
            None,
            None,
            confidence,
            method,
            "words typical of organisation names rather than personal names",
        )
    return _organisation_result("business", business, confidence, method, "organisation words: ")


def _could_be_a_business(tokens: list[str], reading: _PersonReading | None, names: NameFrequencies) -> bool:
    """A lone name, words that are not a person's names in order, two surnames ("SHERWIN WILLIAMS"),
    or a surname that is also a trade word ("DAVID STEEL"): a person, or a business named so (as is
    a person's name after THE: "THE GEORGE HOWARD BAND")."""
    if len(tokens) == 1 or reading is None or reading.unlisted_given:
        return True
    if reading.comma_form:
        return False
    surname = tokens[reading.surname]
    trade_word = _industry_word(surname) is not None or (
        surname in lexicon.WORDS and lexicon.WORDS[surname].entity_type == "business"
    )
    return reading.surname_as_given or trade_word


def _commercial_single_word(token: str) -> bool:
    """A one-word name shaped as no given name is: an acronym (QTX, CDW, or letters no census name
    opens or ends with: MCESD), a word organisation names are full of (AMAZON), or a compound of a
    business word (MISCOWATER, HONORHEALTH)."""
    if len(token) <= 3 or not token.isalpha() or _VOWELS.isdisjoint(token) or not _edges_like_a_name(token):
        return True
    if token_model().words.get(token, 0.0) >= _LEARNED_BRAND_LOG_ODDS:
        return True

    def business_word(part: str) -> bool:
        evidence = lexicon.WORDS.get(part)
        return _industry_word(part) is not None or (evidence is not None and evidence.entity_type == "business")

    return any(
        len(part) >= _COMPOUND_PART_LENGTH and business_word(part)
        for cut in range(3, len(token) - 2)
        for part in (token[:cut], token[cut:])
    )


def _bounded(confidence: float) -> float:
    return round(max(0.5, min(0.99, confidence)), 3)


def _model_log_odds(tokens: list[str], names: NameFrequencies) -> float:
    """Summed organisation-versus-person log odds of the words that can carry a name."""
    model = token_model()
    total = 0.0
    for token in tokens:
        if (
            len(token) < 3
            or not token.isalpha()
            or token in lexicon.TITLES
            or token in lexicon.GENERATIONAL_SUFFIXES
            or token in lexicon.CREDENTIALS
            or token in lexicon.SURNAME_PARTICLES
        ):
            continue
        total += model.word_log_odds(token, names)
    return max(-_MAX_MODEL_LOG_ODDS, min(_MAX_MODEL_LOG_ODDS, total))


def _shape_fallback(tokens: list[str]) -> Classification:
    """No decisive words: two to four plain words read as a (possibly foreign) personal name."""
    # "CHEMSTATION OF AZ" is no name; "A WELLONS" may be (A is also an initial).
    plain_words = [
        token for token in tokens if token.isalpha() and (len(token) == 1 or token not in lexicon.CONNECTORS)
    ]
    if 2 <= len(tokens) <= 4 and len(plain_words) == len(tokens):
        return Classification(
            "individual",
            None,
            None,
            None,
            0.55,
            "rules",
            "name-shaped words with no organisation or government words",
        )
    return Classification(
        "business", None, None, None, 0.5, "rules", "no person-name structure and no decisive words"
    )
