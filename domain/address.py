"""Addresses of payees and suppliers: parsed, normalised to USPS Publication 28 forms, compared.

Two levels, both pure and never raising:

* ``parse_address`` — the full reading for the result's ``address`` block: ``usaddress`` tags the
  parts, ``usaddress-scourgify`` gives the standard forms ("123 MAIN ST STE 100"), with the city,
  state, ZIP5 / ZIP+4, a standard one-line form and a parse status. PO boxes, "ATTN" / "C/O" lines,
  missing parts and foreign addresses come back with a status instead of an exception.
* ``address_key`` and ``compare_addresses`` — a cheap key (street number and name, ZIP5, city;
  no statistical parser, a few microseconds) computed the same way for a payee and for each
  supplier at upsert, and the street / postal / city agreement between two keys, as match
  evidence. Both sides use the same function, so a disagreement is never an artefact of two
  different readings.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import usaddress
from rapidfuzz import fuzz
from scourgify.address_constants import (
    CITY_ABBREVIATIONS,
    DIRECTIONAL_REPLACEMENTS,
    OCCUPANCY_TYPE_ABBREVIATIONS,
    STATE_ABBREVIATIONS,
    STREET_TYPE_ABBREVIATIONS,
)
from scourgify.normalize import normalize_addr_str

from domain.suppliers import Supplier
from domain.vocabulary import (
    US_COUNTRY_NAMES,
    US_STATE_BY_NAME,
    US_STATES,
    US_ZIP_AREA_STATES,
    US_ZIP_PREFIX_STATES,
)

AddressStatus = Literal["standardized", "partial", "foreign", "unparsed"]
AddressKind = Literal["street", "po_box"]
Agreement = Literal["agree", "near", "disagree", "unknown"]

US_STATE_CODES = frozenset(STATE_ABBREVIATIONS.values())
# Parts a payee line may carry that are not the address: who to send it to.
_ATTENTION = re.compile(r"^\s*(?:ATTN|ATTENTION|C\s*/\s*O|CARE\s+OF|C-O)\b[\s:.\-]*(.*)$")
_PO_BOX = re.compile(
    r"^(?:P\s*\.?\s*O\s*\.?\s*BOX|POST\s+OFFICE\s+BOX|POB|BOX|P\s*\.?\s*O\s*\.?(?=\s*#?\s*\d)|DRAWER)\b"
    r"\.?\s*(?:NO\.?|NUMBER|#)?\s*([A-Z0-9][A-Z0-9-]*)(.*)$"
)
_ZIP = re.compile(r"^(\d{5})(?:\s*-?\s*(\d{4}))?$")
_SPACED_ZIP4 = re.compile(r"\b(\d{5}) ?- ?(\d{4})\b")
_TRAILING_ZIP = re.compile(r"\b(\d{5})(?:-(\d{4}))?$")
_US_LIKE_POSTAL = re.compile(r"^\d{3,5}(?:\s*-?\s*\d{4})?$")
_PLACEHOLDER_ZIPS = frozenset({"00000", "99999"})
_SPACES = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^A-Z0-9#& -]+")
_CITY_NOISE = re.compile(r"[^A-Z ]+")
_OCCUPANCY_WORDS = frozenset(OCCUPANCY_TYPE_ABBREVIATIONS) | frozenset(OCCUPANCY_TYPE_ABBREVIATIONS.values()) | {
    "STE", "SUITE", "APT", "UNIT", "#", "FL", "RM", "BLDG", "PMB", "DEPT", "OFC", "NO",
}
_DIRECTIONS = frozenset(DIRECTIONAL_REPLACEMENTS) | frozenset(DIRECTIONAL_REPLACEMENTS.values())
_STREET_TYPES = frozenset(STREET_TYPE_ABBREVIATIONS)
_STANDARD_STREET_WORDS = {**STREET_TYPE_ABBREVIATIONS, **DIRECTIONAL_REPLACEMENTS}
_CITY_SIMILAR = 90.0
_STREET_SIMILAR = 88.0
_CACHE_SIZE = 65_536


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """An address as the result carries it. Absent parts are None; ``missing`` names them."""

    status: AddressStatus
    kind: AddressKind | None
    line1: str | None  # "123 MAIN ST" or "PO BOX 12"
    line2: str | None  # "STE 100"
    city: str | None
    state: str | None
    zip5: str | None
    zip4: str | None
    country: str | None  # "US", or the country as given
    attention: str | None  # an "ATTN" / "C/O" line, kept apart from the address
    one_line: str | None  # "123 MAIN ST STE 100, SPRINGFIELD, IL 62704-1234"
    missing: tuple[str, ...] = field(default=())

    @property
    def postal_code(self) -> str | None:
        if self.zip5 and self.zip4:
            return f"{self.zip5}-{self.zip4}"
        return self.zip5


def _clean(text: object) -> str:
    if text is None:
        return ""
    cleaned = _NON_WORD.sub(" ", str(text).upper().replace(".", "").replace(",", " , "))
    return _SPACES.sub(" ", cleaned).strip(" ,")


def _split_lines(lines: Sequence[str] | str | None) -> list[str]:
    """Address lines as comma-free parts: "ATTN AP, 500 W MADISON" is two parts."""
    if lines is None:
        return []
    raw = [lines] if isinstance(lines, str) else list(lines)
    parts = []
    for line in raw:
        for physical in str(line).splitlines():
            parts.extend(part.strip() for part in physical.split(","))
    return [part for part in parts if part]


def _country_code(country: str | None) -> str | None:
    text = _CITY_NOISE.sub(" ", (country or "").upper().replace(".", " ")).strip()
    text = _SPACES.sub(" ", text)
    if not text or text in US_COUNTRY_NAMES:
        return "US"
    return text


def _state_code(state: str | None) -> str | None:
    text = _SPACES.sub(" ", (state or "").upper().replace(".", "").strip())
    if not text:
        return None
    return STATE_ABBREVIATIONS.get(text, text)


def _zip_parts(postal_code: str | None) -> tuple[str | None, str | None]:
    found = _ZIP.match((postal_code or "").strip())
    if not found or found.group(1) in _PLACEHOLDER_ZIPS:
        return None, None
    return found.group(1), found.group(2)


def _looks_foreign(country: str | None, state: str | None, postal_code: str | None) -> bool:
    if _country_code(country) != "US":
        return True
    if state and _state_code(state) not in US_STATE_CODES:
        return True
    postal = (postal_code or "").strip()
    return bool(postal) and not _US_LIKE_POSTAL.match(postal)


def _one_line(line1: str | None, line2: str | None, city: str | None, state: str | None, postal: str | None) -> str | None:
    street = " ".join(part for part in (line1, line2) if part)
    last = " ".join(part for part in (state, postal) if part)
    text = ", ".join(part for part in (street, city, last) if part)
    return text or None


def _take_attention(parts: list[str]) -> tuple[list[str], str | None]:
    kept, attention = [], []
    for part in parts:
        found = _ATTENTION.match(part.upper())
        if found:
            attention.append(_clean(found.group(1)) or _clean(part))
        else:
            kept.append(part)
    return kept, "; ".join(attention) or None


def _city_state_zip(text: str) -> dict[str, str]:
    """Place, state and ZIP from a free-text tail ("SPRINGFIELD IL 62704"); empty when unclear."""
    if not text.strip():
        return {}
    try:
        tagged, _ = usaddress.tag(text)
    except usaddress.RepeatedLabelError:
        return {}
    return {label: tagged[label] for label in ("PlaceName", "StateName", "ZipCode") if label in tagged}


@dataclass(frozen=True, slots=True)
class RegisteredPlace:
    """Where a supplier is registered: its address lines and its town, state and ZIP."""

    address: str
    city: str
    state: str
    postal_code: str


# A device makers' registry row has no town, state or ZIP fields: its address ends in the town
# line after a bar ("1 Infinite Loop | Cupertino CA 95014").
_TOWN_LINE_BAR = " | "


def registered_place(supplier: Supplier) -> RegisteredPlace:
    """The supplier's own place fields; or, when it has none and its address ends in a town line
    after a bar, the street before the bar and the town, state and ZIP of a US line. A line not
    read so leaves the row with no place and no street: its street key would run into the town
    line (another street to every payee) or stop short of it (the same street in any town)."""
    if not (supplier.city or supplier.state or supplier.postal_code) and _TOWN_LINE_BAR in supplier.address:
        street, _, line = supplier.address.rpartition(_TOWN_LINE_BAR)
        town = _town_line(line) if _country_code(supplier.country) == "US" else None
        if town is None:
            return RegisteredPlace("", "", "", "")
        city, state, zip5 = town
        if not city and _TOWN_LINE_BAR in street:  # "9115 Brown Deer Road | San Diego | CA 92121"
            street, _, city_text = street.rpartition(_TOWN_LINE_BAR)
            city = _clean(city_text)
        return RegisteredPlace(street.strip(), city, state, zip5)
    return RegisteredPlace(supplier.address, supplier.city, supplier.state, supplier.postal_code)


@functools.lru_cache(maxsize=_CACHE_SIZE)  # a maker's registry rows repeat its town line
def _town_line(line: str) -> tuple[str, str, str] | None:
    """(town, state, ZIP) of a US town line, "[<town>] <state> [<ZIP>]"; None without a US state
    that its ZIP agrees with. Read from the end: a statistical tagger splits "FOND DU LAC WI" and
    "Logan Twp New Jersey" wrongly. A ZIP alone is no state here: a foreign postal code is often
    a US ZIP too."""
    text = _SPACED_ZIP4.sub(r"\1-\2", _clean(line).replace(",", " "))  # "78728 - 6610"
    words = text.replace(" - ", " ").split()
    country = next(
        (size for size in (5, 4, 3, 2, 1) if len(words) >= size and " ".join(words[-size:]) in US_COUNTRY_NAMES), 0
    )
    words = words[: len(words) - country]  # "... FL 33101 USA"
    end = len(words)
    zip5 = ""
    if end and (found := _ZIP.match(words[-1])):
        zip5 = found.group(1) if found.group(1) not in _PLACEHOLDER_ZIPS else ""
        end -= 1
    state = None
    # "CA CA", "NY NEW YORK NY", "CALIFORNIA UNITED STATES": the state however often it is
    # written; its name is the whole line only when nothing else is ("WEST VIRGINIA 25301"):
    # "NEW YORK NY" is the town of New York.
    while end:
        size = next(
            (size for size in (4, 3, 2, 1)
             if size <= end and (state is None or size < end) and _names_place(words[end - size : end], state)),
            0,
        )
        if not size:
            break
        state = state or _state_named(words[end - size : end])
        end -= size
    if state is None or (zip5 and state not in US_ZIP_AREA_STATES[zip5[0]] and US_ZIP_PREFIX_STATES.get(zip5[:3]) != state):
        return None  # no state, or one its ZIP is not in: a town's word read as a state, or a typo
    town = words[:end]
    return ("" if town == [state] else " ".join(town)), state, zip5


def _state_named(words: list[str]) -> str | None:
    """The state these words are: its two-letter code or its full name (not scourgify's looser
    abbreviations: KENT, IND and WASH are towns and words too)."""
    text = " ".join(words)
    return text if text in US_STATES else US_STATE_BY_NAME.get(text)


def _names_place(words: list[str], state: str | None) -> bool:
    """Whether these words are a US state, or the country's name after it ("CA UNITED STATES");
    once the line has named a state, only that state again ("PORT WASHINGTON NY" is a town of
    New York, "LAKE AMERICA NY" one of its lakes)."""
    named = _state_named(words)
    if state:
        return named == state
    return named is not None or " ".join(words) in US_COUNTRY_NAMES


def parse_address(
    lines: Sequence[str] | str | None,
    city: str | None = None,
    state: str | None = None,
    postal_code: str | None = None,
    country: str | None = None,
) -> ParsedAddress | None:
    """The payee's address lines and place fields, normalised; None when there is no address at all."""
    key = (tuple(_split_lines(lines)), city or None, state or None, postal_code or None, country or None)
    if not any(key[0]) and not any(key[1:]):
        return None
    return _parse_cached(*key)


@functools.lru_cache(maxsize=_CACHE_SIZE)  # a payee's address repeats on every invoice
def _parse_cached(
    parts: tuple[str, ...], city: str | None, state: str | None, postal_code: str | None, country: str | None
) -> ParsedAddress:
    try:
        return _parse(list(parts), city, state, postal_code, country)
    except Exception:  # the parsers' own failures on hostile text: an unparsed address, never a crash
        text = _clean(" ".join([*parts, city or "", state or "", postal_code or ""]))
        return ParsedAddress("unparsed", None, text or None, None, None, None, None, None,
                             _country_code(country), None, text or None, ("street", "city", "state", "zip"))


def _parse(
    parts: list[str], city: str | None, state: str | None, postal_code: str | None, country: str | None
) -> ParsedAddress:
    parts, attention = _take_attention(parts)
    parts = [part for part in parts if _clean(part)]
    if parts and _country_code(parts[-1]) == "US" and _clean(parts[-1]) in US_COUNTRY_NAMES:
        parts = parts[:-1]  # a trailing "USA" line
    if _looks_foreign(country, state, postal_code):
        return _foreign(parts, city, state, postal_code, country, attention)

    state_code = _state_code(state)
    zip5, zip4 = _zip_parts(postal_code)
    city_text = _clean(city) or None
    box_index = next((i for i, part in enumerate(parts) if _PO_BOX.match(_clean(part))), None)
    if box_index is not None:
        return _po_box(parts, box_index, city_text, state_code, zip5, zip4, attention)
    if not parts:
        return _finish("partial", None, None, None, city_text, state_code, zip5, zip4, attention)

    street = ", ".join(_clean(part) for part in parts)
    normalised = _scourgify(street, city_text, state_code, zip5)
    if normalised is None:
        # Given place fields that disagree with the text (or none given): read the text alone.
        normalised = _scourgify(street, None, None, None)
    if normalised is None:
        tail = _city_state_zip(street)
        kind: AddressKind | None = "street" if street[:1].isdigit() else None
        return _finish("partial", kind, street, None, city_text or _clean(tail.get("PlaceName")) or None,
                       state_code or _state_code(tail.get("StateName")), zip5, zip4, attention, guessed=True)
    line1, line2 = normalised["address_line_1"] or None, normalised["address_line_2"] or None
    parsed_zip5, parsed_zip4 = _zip_parts(normalised["postal_code"])
    return _finish(
        "standardized",
        "street" if line1 and line1[:1].isdigit() else None,
        line1,
        line2,
        city_text or _clean(normalised["city"]) or None,
        state_code or _state_code(normalised["state"]),
        zip5 or parsed_zip5,
        zip4 or parsed_zip4,
        attention,
        guessed=not (line1 and line1[:1].isdigit()),
    )


def _scourgify(street: str, city: str | None, state: str | None, zip5: str | None) -> dict[str, str | None] | None:
    try:
        return dict(normalize_addr_str(street, city=city, state=state, zipcode=zip5))
    except Exception:  # scourgify raises for anything it finds ambiguous: a fallback, not an error
        return None


def _po_box(
    parts: list[str], box_index: int, city: str | None, state: str | None, zip5: str | None, zip4: str | None,
    attention: str | None,
) -> ParsedAddress:
    found = _PO_BOX.match(_clean(parts[box_index]))
    assert found is not None
    line1 = f"PO BOX {found.group(1)}"
    tail = _city_state_zip(" ".join([found.group(2), *parts[box_index + 1 :]]).strip(" ,"))
    if not zip5:
        zip5, zip4 = _zip_parts(tail.get("ZipCode"))
    return _finish("standardized", "po_box", line1, None, city or _clean(tail.get("PlaceName")) or None,
                   state or _state_code(tail.get("StateName")), zip5, zip4, attention)


def _finish(
    status: AddressStatus,
    kind: AddressKind | None,
    line1: str | None,
    line2: str | None,
    city: str | None,
    state: str | None,
    zip5: str | None,
    zip4: str | None,
    attention: str | None,
    guessed: bool = False,
) -> ParsedAddress:
    if state is not None and state not in US_STATE_CODES:
        state = None
    missing = tuple(
        name for name, value in (("street", line1), ("city", city), ("state", state), ("zip", zip5)) if not value
    )
    if status == "standardized" and (missing or guessed):
        status = "partial"
    if line1 is None and city is None and state is None and zip5 is None:
        status = "unparsed"
    postal = f"{zip5}-{zip4}" if zip5 and zip4 else zip5
    return ParsedAddress(status, kind, line1, line2, city, state, zip5, zip4, "US", attention,
                         _one_line(line1, line2, city, state, postal), missing)


def _foreign(
    parts: list[str], city: str | None, state: str | None, postal_code: str | None, country: str | None,
    attention: str | None,
) -> ParsedAddress:
    line1 = ", ".join(_clean(part) for part in parts) or None
    city_text, state_text = _clean(city) or None, _clean(state) or None
    postal = _clean(postal_code) or None
    country_text = _country_code(country) if country else None
    last = " ".join(part for part in (state_text, postal) if part)
    one_line = ", ".join(part for part in (line1, city_text, last, country_text) if part) or None
    return ParsedAddress("foreign", None, line1, None, city_text, state_text, None, None, country_text,
                         attention, one_line, ())


# ---------------------------------------------------------------------------------------------
# Comparison keys and agreement (match evidence)


@dataclass(frozen=True, slots=True)
class AddressKey:
    """What two addresses are compared on. ``street`` is the number and name without type,
    direction or unit ("123 MAIN" for "123 North Main Street, Suite 4") or "PO BOX 12"."""

    street: str | None
    zip5: str | None
    city: str | None


EMPTY_KEY = AddressKey(None, None, None)


def _street_key(parts: list[str]) -> str | None:
    for part in parts:
        text = _clean(part)
        box = _PO_BOX.match(text)
        if box:
            return f"PO BOX {box.group(1)}"
        tokens = text.replace("#", " # ").split()
        if len(tokens) < 2 or not tokens[0][:1].isdigit() or tokens[1] in _OCCUPANCY_WORDS:
            continue  # no number, a number alone (a ZIP on its own line) or a unit line ("2ND FLOOR")
        words = []
        for token in tokens[1:]:
            if token in _OCCUPANCY_WORDS:
                break
            words.append(token)
        # Without type and direction, unless they are the whole name ("100 N ST", "12 AVENUE B"):
        # then in their standard forms, so that "FORT STREET MALL" is "FT ST MALL" either way.
        name = [word for word in words if word not in _DIRECTIONS and word not in _STREET_TYPES] or [
            _STANDARD_STREET_WORDS.get(word, word) for word in words
        ]
        number = tokens[0].rstrip("-")
        return f"{number} {' '.join(name)}".strip() if name else number
    return None


def _city_key(city: str | None) -> str | None:
    text = _SPACES.sub(" ", _CITY_NOISE.sub(" ", (city or "").upper())).strip()
    if not text:
        return None
    return " ".join(CITY_ABBREVIATIONS.get(word, word) for word in text.split())


def street_key(lines: Sequence[str] | str | None) -> str | None:
    """The street part of ``address_key`` alone: what the supplier index keeps per supplier (its
    place it has already) and compares the payee's against."""
    return _street_key(_take_attention(_split_lines(lines))[0])


def address_key(
    lines: Sequence[str] | str | None, city: str | None = None, postal_code: str | None = None
) -> AddressKey:
    """The comparison key of an address; cheap enough for every supplier at upsert."""
    parts, _ = _take_attention(_split_lines(lines))
    street = _street_key(parts)
    zip5 = _zip_parts(postal_code)[0]
    if zip5 is None and parts:  # "... SPRINGFIELD IL 62704" all in one line
        trailing = _TRAILING_ZIP.search(_clean(parts[-1]))
        zip5 = trailing.group(1) if trailing and trailing.group(1) not in _PLACEHOLDER_ZIPS else None
    city_key = _city_key(city)
    if street is None and zip5 is None and city_key is None:
        return EMPTY_KEY
    # Interned: 349k suppliers share a few thousand cities and ZIPs.
    return AddressKey(street, sys.intern(zip5) if zip5 else None, sys.intern(city_key) if city_key else None)


def supplier_address_key(address: str, city: str, postal_code: str) -> AddressKey:
    """The key the supplier index stores per supplier, computed once at upsert."""
    return address_key(address, city, postal_code)


@dataclass(frozen=True, slots=True)
class AddressAgreement:
    """Street, postal code and city of a payee against a supplier. ``unknown`` when either side
    lacks the part; postal ``near`` when only the first three ZIP digits (the area) agree."""

    street: Agreement
    postal: Agreement
    city: Agreement

    @property
    def compared(self) -> bool:
        return any(value != "unknown" for value in (self.street, self.postal, self.city))


def street_agreement(payee: str | None, supplier: str | None) -> Agreement:
    """Two street keys: the same number and a name alike, or not (never ``near``)."""
    if not payee or not supplier:
        return "unknown"
    if payee == supplier:
        return "agree"
    payee_box, supplier_box = payee.startswith("PO BOX"), supplier.startswith("PO BOX")
    if payee_box != supplier_box:
        return "unknown"  # a box and a street can both be the supplier's: no evidence either way
    if payee_box:
        return "disagree"  # box numbers are the same or another box: no spelling to forgive
    payee_number, _, payee_name = payee.partition(" ")
    supplier_number, _, supplier_name = supplier.partition(" ")
    if payee_number != supplier_number:
        return "disagree"
    if not payee_name or not supplier_name:
        return "agree"
    return "agree" if fuzz.ratio(payee_name, supplier_name) >= _STREET_SIMILAR else "disagree"


def compare_addresses(payee: AddressKey, supplier: AddressKey) -> AddressAgreement:
    """Agreement as evidence; pure, symmetric, never raises."""
    if payee.zip5 and supplier.zip5:
        postal: Agreement = (
            "agree" if payee.zip5 == supplier.zip5 else "near" if payee.zip5[:3] == supplier.zip5[:3] else "disagree"
        )
    else:
        postal = "unknown"
    if payee.city and supplier.city:
        city: Agreement = (
            "agree"
            if payee.city == supplier.city or fuzz.ratio(payee.city, supplier.city) >= _CITY_SIMILAR
            else "disagree"
        )
    else:
        city = "unknown"
    return AddressAgreement(street_agreement(payee.street, supplier.street), postal, city)
