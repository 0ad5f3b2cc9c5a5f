"""Evidence for or against "this payee is this supplier": the features of a candidate, their
fitted weights, and how a decision is explained.

A candidate's utility is ``w · x`` over ``FEATURES``; each term is one piece of evidence in
log-odds (Fellegi–Sunter style: agreement on rare things counts for, conflict counts against),
so an explanation is the list of non-zero terms. Features come in four parts: of the name, of
the supplier holding it, of the places, and of the query alone.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, Levenshtein

from domain.address import Agreement
from domain.matching.world import (
    JOINERS,
    is_common_first_name,
    is_common_surname,
    is_real_word,
    is_surname,
)
from domain.normalize import NormalizedName, normalize_place, normalize_postal_code
from domain.suppliers import Supplier
from domain.vocabulary import (
    AFFILIATED_BODY_WORDS,
    CREDENTIALS,
    FOR_PROFIT_FAMILIES,
    FOREIGN_LEGAL_FAMILIES,
    GENERATIONAL_SUFFIXES,
    LEGAL_FORM_FAMILY,
    NATIONAL_BODY_WORDS,
    PERSON_TITLES,
    US_COUNTRY_NAMES,
    US_COUNTRY_WORDS,
    US_STATE_BY_NAME,
    US_STATE_CODES,
    US_STATES,
)

FEATURES = (
    # of the name
    "bias", "similarity", "query_coverage", "name_coverage", "exact", "near_exact", "exact_elsewhere",
    "truncated", "cut_share", "real_word_edit", "invented_word_edit", "affiliated_body", "descriptor_dropped",
    "words_substituted", "payee_words_unmatched", "word_swapped",
    # of the supplier holding it
    "via_alt_name", "both_names", "legal_form_conflict", "kind_conflict",
    "common_name_nonprofit", "common_name_government", "common_name_business",
    # of the places (the street per supplier, the rest shared by namesakes at one place)
    "state_agrees", "state_conflicts", "city_agrees", "city_conflicts", "postal_agrees", "postal_conflicts",
    "national_place_conflict", "company_place_conflict", "country_conflicts", "default_place_agrees", "default_place_conflicts",
    "local_nonprofit_unplaced", "local_government_unplaced", "street_agrees", "street_conflicts",
    # of the query
    "query_information", "log_namesakes_unplaced", "log_namesakes_state_pinned", "short_name", "ends_in_joiner",
)
# Fitted by bench/match.py --calibrate on the synthetic open world (see bench/match.py); order as FEATURES.
WEIGHTS = (
    -5.6523, 3.1708, 0.0000, 4.2787, -0.8800, 1.0140, -1.8392, -0.5478, -2.1251, -2.0812, -2.0247, -2.9922,
    0.0000, -3.3680, -4.5983, -1.5230, -2.6010, 3.3859, -2.1262, -0.8570, -1.7078, -0.6005, -0.7190, 1.3774,
    -2.1836, 0.7163, -1.8288, 2.3852, -1.0482, -1.8879, -1.3039, -4.6140, 2.0550, -2.5190, -1.4883, -0.9223,
    2.7270, -1.7382, 0.4460, -1.0068, 0.0000, -1.6400, -0.3423,
)
HOLDER_START = FEATURES.index("via_alt_name")
PLACE_START = FEATURES.index("state_agrees")
TAIL_START = FEATURES.index("query_information")

# Names this long (without spaces) may differ from the payee by one slip of the keyboard and
# still be the same name; from the second length on, by two. Digits must agree exactly.
NEAR_EXACT_MIN_CHARS = 6
NEAR_EXACT_TWO_EDIT_CHARS = 16
# Tokens shorter than this are not typo-corrected: one edit turns them into other words.
MIN_TYPO_TOKEN = 4
# A share of a name's words this large, unmatched, is worth a reviewer's notice.
WORD_SHARE_MENTIONED = 0.1
# Acronyms and other names this short (without spaces) are carried by many organisations.
SHORT_NAME_CHARS = 4
# Government bodies that are one organisation nationwide (registry "code" field).
_NATIONAL_GOVERNMENT_CODES = frozenset({"Federal", "Federal - Executive", "Federal - Legislative", "Federal - Judicial"})
_FOR_PROFIT_FORMS = frozenset({"CO", "CORP", "LTD"})


class Location(NamedTuple):
    """A place in canonical form; empty strings are unknown (a tuple: hashed in C, per holder)."""

    city: str
    state: str
    postal_code: str

    @classmethod
    def of(cls, city: str | None, state: str | None, postal_code: str | None) -> Location:
        state_text = normalize_place(state)
        return cls(
            city=normalize_place(city),
            state=US_STATE_BY_NAME.get(state_text, state_text)[:3],
            postal_code=normalize_postal_code(postal_code),
        )

    def __bool__(self) -> bool:
        return bool(self.city or self.state or self.postal_code)


# The country of a holder or payee whose legal form says it is outside the US, not which country.
ABROAD = "ABROAD"


def country_code(raw: str | None) -> str:
    text = normalize_place(raw)
    return "US" if text in US_COUNTRY_NAMES else text


def countries_differ(a: str, b: str) -> bool:
    """Whether two known countries differ; "abroad" differs from the US only."""
    if not a or not b:
        return False
    if ABROAD in (a, b):
        return "US" in (a, b)
    return a != b


def has_foreign_form(legal_suffixes: Iterable[str]) -> bool:
    """Whether any of a name's legal forms is one no US company takes ("ACME PTY LTD")."""
    return any(LEGAL_FORM_FAMILY[form] in FOREIGN_LEGAL_FAMILIES for form in legal_suffixes)


def country_in_name(name: NormalizedName) -> str:
    """The country a payee's name gives: "ACME AMERICA", "ACME USA INC" are the US arm,
    "ACME GMBH" a company abroad; '' when the name says nothing."""
    if set(name.tokens[-2:]) & US_COUNTRY_WORDS:
        return "US"
    forms = name.legal_suffixes
    # A form that is also a state's code may be the state ("... OF LAS VEGAS NV").
    if forms and forms[-1] not in US_STATE_CODES and has_foreign_form(forms):
        return ABROAD
    return ""


# US state names by their first word, each word list longest first: "WEST VIRGINIA" is not
# Virginia. Looked up per word of every query: most words start no state's name.
_STATE_NAMES_BY_FIRST_WORD: dict[str, list[tuple[tuple[str, ...], str]]] = {}
for _code, _name in sorted(US_STATES.items(), key=lambda item: -len(item[1].split())):
    _STATE_NAMES_BY_FIRST_WORD.setdefault(_name.split()[0], []).append((tuple(_name.split()), _code))


def states_named(tokens: tuple[str, ...]) -> frozenset[str]:
    """The US states whose names a name's words spell out ("FAMILY PLANNING ASSOCIATION OF MAINE")."""
    named: set[str] = set()
    position = 0
    while position < len(tokens):
        for words, code in _STATE_NAMES_BY_FIRST_WORD.get(tokens[position], ()):
            if tokens[position : position + len(words)] == words:
                named.add(code)
                position += len(words) - 1
                break
        position += 1
    return frozenset(named)


class QueryPlace(NamedTuple):
    """Where the payee is: what the record says, and what its source system usually pays
    (``default_*``, weak evidence used only where the record is silent)."""

    location: Location
    country: str  # given, or "US" when the record names a US state
    default_state: str
    default_country: str
    city_in_name: bool = False  # "TOWN OF SHARON" in Sharon: the city agrees by the name alone
    country_from_name: bool = False  # "ACME AMERICA": a country, but no place to pin a local body
    street: str | None = None  # the street key of the payee's address lines (domain.address.street_key)
    states_in_name: frozenset[str] = frozenset()  # "KENTUCKY CHRISTIAN SCHOOL": the states the name names

    @classmethod
    def of(
        cls,
        location: Location,
        country: str | None = None,
        default_state: str | None = None,
        default_country: str | None = None,
        street: str | None = None,
    ) -> QueryPlace:
        given = country_code(country) or ("US" if location.state in US_STATE_CODES else "")
        return cls(
            location, given, Location.of(None, default_state, None).state, country_code(default_country),
            street=street,
        )

    @classmethod
    def for_payee(
        cls,
        name: NormalizedName,
        location: Location,
        country: str | None = None,
        default_state: str | None = None,
        default_country: str | None = None,
        street: str | None = None,
    ) -> QueryPlace:
        """Where a payee of this name is: the record's place, else what the name itself says."""
        named = "" if country else country_in_name(name)
        if named == ABROAD and location.state in US_STATE_CODES:
            named = ""  # a US state outweighs the form: "GLAD TIDINGS AG" of Alaska is an Assembly of God
        place = cls.of(location, country or named, default_state, default_country, street)
        return place.naming(name.tokens)._replace(country_from_name=bool(named))

    def naming(self, name_tokens: tuple[str, ...]) -> QueryPlace:
        """This place for a payee of these name tokens (whether its city is part of the name)."""
        city_tokens = self.location.city.split()
        return self._replace(
            city_in_name=bool(city_tokens) and set(city_tokens) <= set(name_tokens),
            states_in_name=states_named(name_tokens),
        )

    @property
    def placed(self) -> bool:
        """Whether anything says where the payee is."""
        return bool(self.location or (self.country and not self.country_from_name) or self.default_state)


def primary_family(legal_suffixes: Iterable[str]) -> str:
    """The family of a name's outermost legal form ("CO., LTD" → limited), '' when it has none."""
    forms = tuple(legal_suffixes)
    return LEGAL_FORM_FAMILY[forms[-1]] if forms else ""


@dataclass(frozen=True)
class DefaultPlaces:
    """Where each source system's payees usually are ("US-AZ" for a city in Arizona, "US"),
    and the country of payees whose source has no entry: weak evidence, never a filter."""

    country: str = "US"
    by_source: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, country: str, by_source: dict[str, str]) -> DefaultPlaces:
        return cls(country_code(country), tuple(sorted(by_source.items())))

    def for_source(self, source_system: str) -> tuple[str, str]:
        """(default state, default country) for a record of ``source_system``."""
        place = dict(self.by_source).get(source_system)
        if place is None:
            return "", self.country
        country, _, state = place.partition("-")
        return state.upper(), country_code(country)


class HolderKind(NamedTuple):
    """What kind of entity a supplier is, as far as telling namesakes apart goes."""

    category: str  # nonprofit / government / business
    country: str
    legal_family: str
    legal_forms: frozenset[str]
    national: bool  # one body nationwide: its registered place is a head office

    @classmethod
    def of(cls, supplier: Supplier, name: NormalizedName, state: str | None = None) -> HolderKind:
        """``state``: where the supplier is registered when its own field does not say
        (``domain.address.registered_place``)."""
        national = supplier.code in _NATIONAL_GOVERNMENT_CODES or (
            supplier.category == "nonprofit"
            and not supplier.alt_name  # a chapter names its chapter there
            and bool(name.tokens)
            and name.tokens[0] in NATIONAL_BODY_WORDS
        )
        return _holder_kind(
            supplier.category, supplier.country, state or supplier.state, name.legal_suffixes, national
        )


# A few hundred kinds among 350k suppliers: each derived once (an index build asks for every supplier's).
@functools.lru_cache(maxsize=1 << 12)
def _holder_kind(
    category: str, country_text: str, state: str, legal_suffixes: tuple[str, ...], national: bool
) -> HolderKind:
    country = country_code(country_text)
    registered_in_a_state = Location.of(None, state, None).state in US_STATE_CODES
    if has_foreign_form(legal_suffixes) and country in ("", "US") and not registered_in_a_state:
        # A registry of device makers lists "tci GmbH" of Hessen as US (and no state); with a
        # state, the form is a word: "GLAD TIDINGS AG" (Assembly of God), "... LAS VEGAS NV".
        country = ABROAD
    return HolderKind(
        category=category,
        country=country,
        legal_family=primary_family(legal_suffixes),
        legal_forms=frozenset(legal_suffixes),
        national=national,
    )


class PayeeForms(NamedTuple):
    """The legal forms a payee name carries."""

    forms: frozenset[str]
    family: str

    @classmethod
    def of(cls, legal_suffixes: tuple[str, ...]) -> PayeeForms:
        return cls(frozenset(legal_suffixes), primary_family(legal_suffixes))


class NameCommonness(NamedTuple):
    """How common the payee's name is in the world (``world.commonness``): as written, and with
    the names of US states counted as distinctive (a government body's name carries its
    jurisdiction: "STATE OF ARIZONA" is one body, "CITY OF COVINGTON" is several)."""

    plain: float
    jurisdictional: float


def holder_features(payee: PayeeForms, holder: HolderKind, name: NameCommonness) -> tuple[float, ...]:
    """(legal form conflict, kind conflict, common name for a nonprofit, for a government body,
    for a business): "ACME LLC" is not "ACME SRL"; a name that says it is a company run for
    profit is not a nonprofit or a government body; and an everyday name weighs differently
    with each kind of holder (namesake nonprofits abound, namesake manufacturers are rare)."""
    form_conflict = bool(payee.family and holder.legal_family and payee.family != holder.legal_family)
    # A government body is incorporated under no legal form at all.
    kind_conflict = holder.category in ("nonprofit", "government") and bool(
        {form for form in payee.forms - holder.legal_forms
         if holder.category == "government" or form in _FOR_PROFIT_FORMS or LEGAL_FORM_FAMILY[form] in FOR_PROFIT_FAMILIES}
    )
    common = (
        name.plain if holder.category == "nonprofit" else 0.0,
        name.jurisdictional if holder.category == "government" else 0.0,
        name.plain if holder.category not in ("nonprofit", "government") else 0.0,
    )
    return float(form_conflict), float(kind_conflict), *common


def _is_abbreviation(short: str, long: str) -> bool:
    """'VLY' abbreviates 'VALLEY', 'ELIZ' truncates 'ELIZABETH': same first letter, in order."""
    if len(short) < 2 or len(short) >= len(long) or short[0] != long[0]:
        return False
    position = 0
    for ch in short:
        position = long.find(ch, position) + 1
        if position == 0:
            return False
    return True


def tokens_agree(a: str, b: str) -> bool:
    return a == b or a[0] == b[0] and (_is_abbreviation(a, b) or _is_abbreviation(b, a))


def token_credit(token: str, other: str, cut: bool) -> float:
    """How far ``other`` counts as ``token``: same word, cut by truncation, misspelt, abbreviated."""
    if token == other or cut and (token.startswith(other) or other.startswith(token)):
        return 1.0
    if _plural_of(token, other):
        return 0.8
    if (
        len(token) >= MIN_TYPO_TOKEN
        and len(other) >= MIN_TYPO_TOKEN
        and DamerauLevenshtein.distance(token, other, score_cutoff=1) <= 1
        and not (is_real_word(token) and is_real_word(other))
    ):
        return 0.8
    return 0.6 if tokens_agree(token, other) else 0.0


def real_word_edit(query_tokens: list[str], name_tokens: list[str]) -> bool:
    """A word of the payee is one letter away from a word of the name and both are real words:
    MILL / MALL, BARN / BURN, TEXT / TENT name different things; a typo makes a non-word."""
    query_only = [token for token in query_tokens if token not in name_tokens and is_real_word(token)]
    if not query_only:
        return False
    name_only = [token for token in name_tokens if token not in query_tokens and is_real_word(token)]
    return any(
        abs(len(a) - len(b)) <= 1 and DamerauLevenshtein.distance(a, b, score_cutoff=1) <= 1
        and not _plural_of(a, b)
        for a in query_only
        for b in name_only
    )


def _plural_of(a: str, b: str) -> bool:
    """SYSTEM / SYSTEMS, BOX / BOXES, TECHNOLOGY / TECHNOLOGIES: one word, singular and plural."""
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) < 3:  # U / US, I / IS: other words
        return False
    if longer == shorter + "S":
        return not shorter.endswith("S")  # BAS / BASS, PRES / PRESS: other words
    if longer == shorter + "ES":  # BOXES, CHURCHES; not WAR / WARES
        return shorter.endswith(("S", "X", "Z", "CH", "SH"))
    return shorter.endswith("Y") and longer == shorter[:-1] + "IES"


def invented_word_edit(query_tokens: list[str], name_tokens: list[str]) -> bool:
    """The word that singles the name out — an invented one, no dictionary word — differs by a
    letter: ZENTRIV / ZENTRIX, BELCO / BELKO are other companies as often as
    they are typos. Two neighbouring letters swapped (VIDEOSWICTH) are a slip of the keyboard:
    companies are not named apart that way."""
    query_only = [token for token in query_tokens if token not in name_tokens and len(token) >= MIN_TYPO_TOKEN]
    name_only = [
        token for token in name_tokens
        if token not in query_tokens and len(token) >= MIN_TYPO_TOKEN and token.isalpha() and not is_real_word(token)
    ]
    return any(
        DamerauLevenshtein.distance(a, b, score_cutoff=1) <= 1 and not _swapped(a, b)
        for a in query_only
        for b in name_only
    )


def _swapped(a: str, b: str) -> bool:
    """The same letters but for two neighbours swapped (one Damerau edit, two Levenshtein edits)."""
    return len(a) == len(b) and Levenshtein.distance(a, b, score_cutoff=2) == 2


def affiliated_body(query_tokens: list[str], name_tokens: list[str]) -> bool:
    """A word naming an affiliated body ("FOUNDATION", "EMPLOYEES", "CHAPTER") on one side only,
    not merely misspelt there ("UNOIN PACIFIC" is "UNION PACIFIC")."""
    query_only, name_only = set(query_tokens) - set(name_tokens), set(name_tokens) - set(query_tokens)
    return any(
        word in AFFILIATED_BODY_WORDS and not any(token_credit(word, other, cut=False) for other in others)
        for words, others in ((query_only, name_only), (name_only, query_only))
        for word in words
    )


def places_agree(a: str, b: str) -> bool:
    if a == b:
        return True
    if a[:1] != b[:1]:  # every reading below needs the same first letter (the common case)
        return False
    tokens_a, tokens_b = a.split(), b.split()
    if len(tokens_a) == len(tokens_b):
        return all(tokens_agree(x, y) for x, y in zip(tokens_a, tokens_b, strict=True))
    compact_a, compact_b = a.replace(" ", ""), b.replace(" ", "")
    shorter, longer = sorted((compact_a, compact_b), key=len)
    return len(shorter) >= 5 and longer.startswith(shorter)


def location_features(query: Location, supplier: Location) -> tuple[float, ...]:
    """(state agrees, state conflicts, city agrees, city conflicts, postal agrees, postal conflicts)."""
    state_agrees = state_conflicts = city_agrees = city_conflicts = postal_agrees = postal_conflicts = 0.0
    if query.state and supplier.state:
        state_agrees, state_conflicts = (1.0, 0.0) if query.state == supplier.state else (0.0, 1.0)
    if query.city and supplier.city:
        # A namesake town in another state is no agreement.
        if not state_conflicts and places_agree(query.city, supplier.city):
            city_agrees = 1.0
        else:
            city_conflicts = 1.0
    if query.postal_code and supplier.postal_code:
        postal_agrees, postal_conflicts = (
            (1.0, 0.0) if query.postal_code == supplier.postal_code else (0.0, 1.0)
        )
    return state_agrees, state_conflicts, city_agrees, city_conflicts, postal_agrees, postal_conflicts


def place_features(
    query: QueryPlace, location: Location, holder: HolderKind, name_commonness: float, street: Agreement = "unknown"
) -> tuple[float, ...]:
    """The place part of the features (``FEATURES[PLACE_START:TAIL_START]``); ``street`` is the
    payee's street against the supplier's (``domain.address.street_agreement``)."""
    values = list(location_features(query.location, location))
    town_agrees = bool(values[2])
    if query.city_in_name:
        values[2] = 0.0  # the name already said where it is: no evidence twice
    # "123 MAIN" in another state, town or ZIP is another street of that name, and with no town
    # or ZIP on either side it is a street in any of thousands of towns.
    street_agrees = float(
        street == "agree" and bool(query.location.city or query.location.postal_code)
        and bool(location.city or location.postal_code) and not (values[1] or values[3] or values[5])
    )
    street_conflicts = float(street == "disagree")
    national_conflict = 0.0
    if holder.national:
        street_conflicts = 0.0  # its registered street is its head office's, in its own town too
    if holder.national and (values[1] or values[3] or values[5]):
        # A national body paid at a regional office: its registry address is its head office.
        # A federal agency is one body wherever it is paid; a nonprofit of national name may
        # be a namesake affiliate, which the fitted weight of the conflict says how often.
        values[1] = values[3] = values[5] = 0.0
        national_conflict = 0.0 if holder.category == "government" else 1.0
    company_conflict = 0.0
    if holder.category == "business" and (values[1] or values[3] or values[5]):
        # A company's registered place is its head office, and it is paid at branches and
        # remit-to boxes too: one term, whose fitted weight says how often a company paid
        # elsewhere is another company of the name. Its state alone is no agreement then: a
        # company in another town of the state is no likelier the one than a company anywhere
        # (in its own town, another ZIP is another office).
        if not town_agrees:
            values[0] = 0.0
        values[1] = values[3] = values[5] = 0.0
        company_conflict = 1.0
    country_conflicts = float(countries_differ(query.country, holder.country))
    default_agrees = default_conflicts = 0.0
    if not query.location.state and (not query.country or query.country_from_name):
        if query.default_state and location.state:
            # A company's registered place is its head office, and a source pays companies of
            # every state: the source's state says nothing of a company, either way. Nor is it
            # against a body where the payee's own ZIP agrees or its name names the body's
            # state ("KANSAS MENNONITE MENS CHORUS"); a town alone is in many states.
            if holder.category != "business":
                same_state = query.default_state == location.state
                placed_otherwise = bool(values[4]) or location.state in query.states_in_name
                default_agrees = float(same_state)
                default_conflicts = float(not same_state and not placed_otherwise and not holder.national)
        elif not query.country and countries_differ(query.default_country, holder.country):
            # A country the name gives is compared above: the source's default is for silent names.
            default_conflicts = 1.0
    local_nonprofit = local_government = 0.0
    if not query.placed and location.state and not holder.national:
        # Nothing places the payee, the supplier is a local body: the name alone must single
        # it out among every namesake the world has, and an everyday name cannot.
        if holder.category == "nonprofit" and location.state not in query.states_in_name:
            # A nonprofit named after its own state ("KENTUCKY CHRISTIAN SCHOOL" of Kentucky) is
            # placed by its name: its namesakes would be in that state too, where they are few.
            local_nonprofit = name_commonness
        elif holder.category == "government":
            local_government = name_commonness
    return (
        *values, national_conflict, company_conflict, country_conflicts, default_agrees, default_conflicts,
        local_nonprofit, local_government, street_agrees, street_conflicts,
    )


def is_short_name(key: str) -> bool:
    return len(key.replace(" ", "")) <= SHORT_NAME_CHARS


def lone_common_surname(query: NormalizedName) -> bool:
    """"HARRIS", "HARRIS INC", "THE HARRIS COMPANY", "SMITH'S": one common surname and nothing
    else is how a payment file writes a person, or one of the many firms named after one."""
    naming = [token for token in query.tokens if token not in JOINERS]
    if len(naming) != 1 or query.aliases:
        return False
    token = naming[0]
    return is_common_surname(token) or token.endswith("S") and is_common_surname(token[:-1])


def reads_as_person(query: NormalizedName) -> bool:
    """"DAVID CLARK", "MARY A JONES JR", "CLARK DAVID", "J SMITH", "MR CLARK": a first name (or
    an initial or a title) and a surname, either order, perhaps a second name between, no legal
    form: how a payment file writes a person, whom a company named after one ("David Clark
    Company") is not."""
    # "LAUREL CHURCH OF CHRIST" is no person: a person's name joins given names only ("JOHN AND
    # MARY SMITH"); a lone letter is an initial.
    joined = any(len(token) > 1 and token in JOINERS and token != "AND" for token in query.tokens)
    if query.legal_suffixes or query.aliases or joined:
        return False
    naming = [token for token in query.tokens if token != "AND"]
    titled = bool(naming) and naming[0] in PERSON_TITLES
    while naming and naming[0] in PERSON_TITLES:
        naming.pop(0)
    while len(naming) > 1 and (naming[-1] in GENERATIONAL_SUFFIXES or naming[-1] in CREDENTIALS):
        naming.pop()
    if titled and len(naming) == 1:
        return is_surname(naming[0])
    if not 2 <= len(naming) <= 3:
        return False
    first, *middle, last = naming
    if not all(len(token) == 1 or is_common_first_name(token) or is_surname(token) for token in middle):
        return False
    return (_given(first) and is_surname(last) and (len(first) > 1 or is_common_surname(last))) or (
        is_common_surname(first) and _given(last)
    )


def _given(token: str) -> bool:
    """A common first name, or an initial standing for one."""
    return len(token) == 1 and token.isalpha() or is_common_first_name(token)


# Agreement that places a payee among a name's many holders: its town, ZIP or street (a state
# holds thousands of namesakes, and of people of a common surname).
PINNING_PLACE = ("city_agrees", "postal_agrees", "street_agrees")


def pinned_by_place(terms: Iterable[Evidence]) -> bool:
    return any(term.feature in PINNING_PLACE for term in terms)


def ends_in_joiner(tokens: tuple[str, ...]) -> bool:
    """"INTERNATIONAL ASSOCIATION OF": a name cut before the words that single it out."""
    return len(tokens) > 1 and tokens[-1] in JOINERS


def dot(weights: tuple[float, ...], values: tuple[float, ...]) -> float:
    return sum(map(operator.mul, weights, values))


def prefix_ratio(text: str, name: str) -> float:
    """Similarity of ``text`` to the first ``len(text)`` characters of a longer ``name`` (else 0)."""
    return fuzz.ratio(text, name[: len(text)]) if len(name) > len(text) else 0.0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def near_exact(query: str, name: str, truncation_possible: bool) -> bool:
    """One or two keyboard slips apart, spaces aside ("BETHESDA MISIONN" / "BETHESDA MISSION"),
    or, when the payee may be cut, apart that much from a prefix of the name."""
    compact_query, compact_name = query.replace(" ", ""), name.replace(" ", "")
    if len(compact_query) < NEAR_EXACT_MIN_CHARS:
        return False
    allowed = 1 if len(compact_query) < NEAR_EXACT_TWO_EDIT_CHARS else 2
    if truncation_possible and len(compact_name) > len(compact_query) + allowed:
        lengths = range(len(compact_query) - allowed, len(compact_query) + allowed + 1)
        readings = [compact_name[:length] for length in lengths]
    else:
        readings = [compact_name]
    query_digits = _digits(compact_query)
    return any(
        _digits(reading) == query_digits
        and DamerauLevenshtein.distance(compact_query, reading, score_cutoff=allowed) <= allowed
        for reading in readings
    )


class Evidence(NamedTuple):
    feature: str
    value: float
    contribution: float  # log-odds: weight × value


def evidence(weights: tuple[float, ...], features: tuple[float, ...]) -> tuple[Evidence, ...]:
    """The non-zero terms of a utility, strongest first: why the matcher thinks what it thinks."""
    terms = [
        Evidence(name, round(value, 4), round(weight * value, 4))
        for name, weight, value in zip(FEATURES, weights, features, strict=True)
        if value
    ]
    return tuple(sorted(terms, key=lambda term: -abs(term.contribution)))


def why(features: tuple[float, ...], place: QueryPlace) -> str:
    """A one-line reason for a reviewer (the evidence list has the detail)."""
    named = dict(zip(FEATURES, features, strict=True))
    if named["exact"]:
        parts = ["exact name"]
    elif named["near_exact"]:
        parts = ["same name but for a slip"]
    else:
        parts = [f"name similarity {named['similarity']:.2f}"]
    for feature, text in (
        ("via_alt_name", "via alt name"),
        ("truncated", "payee name truncated"),
        ("descriptor_dropped", "read without a descriptor tail"),
        ("real_word_edit", "a word differs by one letter from another real word"),
        ("invented_word_edit", "the name's own word differs by a letter"),
        ("affiliated_body", "one name is of an affiliated body"),
        ("legal_form_conflict", "legal forms conflict"),
        ("kind_conflict", "payee is a company, supplier is not"),
        ("country_conflicts", "countries differ"),
        ("street_conflicts", "street differs"),
        ("national_place_conflict", "national body paid elsewhere"),
        ("company_place_conflict", "company paid away from its registered place"),
        ("local_nonprofit_unplaced", "nothing places the payee; local nonprofit with an everyday name"),
    ):
        if named[feature]:
            parts.append(text)
    if named["word_swapped"] or named["words_substituted"] >= WORD_SHARE_MENTIONED:
        parts.append("each name has a word the other lacks")
    elif named["payee_words_unmatched"] >= WORD_SHARE_MENTIONED:
        parts.append("the payee has words the name lacks")
    agreed = [place_name for place_name in ("street", "city", "state", "postal") if named[f"{place_name}_agrees"]]
    if agreed:
        parts.append(f"{' and '.join(agreed)} agree")
    elif not place.placed:
        parts.append("no location given")
    return "; ".join(parts)
