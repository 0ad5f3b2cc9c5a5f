"""Supplier index and matcher: exact normalised hit, else blocked fuzzy candidates, then a
calibrated choice between them that uses city / state / postal code to tell namesakes apart.

How a payee is matched:

1. Normalise the payee name (``domain.normalize``); its key and any DBA alias are queries, and
   so are its loose readings (a slipped or glued legal form undone, ``loose_keys``).
2. Candidate names: exact key hits (also after respelling unknown tokens to indexed ones one
   edit away), and — unless an exact hit already sits where the payee is — names that share
   the query's rarest tokens (an inverted index over distinct names, with a one-deletion index
   so misspelt tokens still find their postings). At most ``MAX_SCORED_NAMES`` names are
   ranked (WRatio, token-sort ratio and, for a name that may be cut, the ratio to each name's
   prefix) and the best few of each ranking scored fully: never a scan of the whole list.
3. Each supplier behind a candidate name gets features (name similarity, IDF-weighted token
   coverage both ways, exact or the same but for a keyboard slip or two, beaten by another
   name that is exact, truncation and how much of the name the cut lost, alt-name use, both
   names of an "X DBA Y" payee agreeing with the supplier's two names, location agreement,
   how many suppliers carry the name and whether only the state singles this one out) and a
   utility ``w · x``. A softmax with a "none of these" option at utility 0 turns utilities
   into probabilities, so two equally good namesakes each get at most ~0.5.
4. Decision: ``matched`` when the best probability clears ``match_threshold`` (and beats the
   runner-up by ``ambiguity_margin``); ``ambiguous`` when the suppliers sharing the best name
   together clear it but none alone does (chapters with no deciding location); else ``none``.

The weights were fitted by ``python bench/match.py --calibrate`` on synthetic noisy variants of
the supplier list itself (typos, truncation, suffix changes, word drops, reorderings, with
suppliers held out of the index as negatives) — never on evaluation data.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import heapq
import math
import operator
import pickle
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from domain.normalize import (
    CUT_NAME_MIN_CHARS,
    NormalizedName,
    loose_keys,
    normalize_name,
    normalize_place,
    normalize_postal_code,
)
from domain.suppliers import SUPPLIER_FIELDS, Supplier

MatchType = Literal["exact", "fuzzy", "none"]
Decision = Literal["matched", "ambiguous", "none"]

SNAPSHOT_FORMAT = 1
# Snapshots hold normalised names: one written by other normalisation code is rebuilt, not used.
_NORMALISATION_DIGEST = hashlib.blake2b(
    b"".join(Path(__file__).with_name(module).read_bytes() for module in ("normalize.py", "matching.py", "suppliers.py")),
    digest_size=8,
).hexdigest()
# Tokens shorter than this are not typo-corrected: one edit turns them into other words.
MIN_TYPO_TOKEN = 4
MAX_CORRECTIONS = 4
MAX_RESPELLINGS = 16
# An indexed token this rare may itself be a misspelling (supplier lists have typos too): its
# one-edit neighbours that are this many times more common are tried as well.
RARE_SPELLING_NAMES = 3
COMMON_SPELLING_FACTOR = 10
# Blocking: tokens considered (rarest first), names a single rare token may bring alone, and
# the most names ever scored for one query.
MAX_ANCHORS = 4
RARE_TOKEN_NAMES = 300
MAX_SCORED_NAMES = 1500
MIN_BLOCKED_SCORE = 60  # a ranking score below this is not the same name
TOP_NAMES = 8
TOP_NAMES_SECONDARY = 4  # from each of the other rankings, which mostly agree with WRatio's
# Names this long (without spaces) may differ from the payee by one slip of the keyboard and
# still be the same name; from the second length on, by two. Digits must agree exactly.
NEAR_EXACT_MIN_CHARS = 6
NEAR_EXACT_TWO_EDIT_CHARS = 16
# Alt names that are a care-of line or a trustee are people, not names of the supplier.
_PERSON_ALT_MARKERS = ("TTEE", "TRUSTEE", "ET AL", "C/O", "C-O", "%", "ATTN")

FEATURES = (
    # of the name
    "bias", "similarity", "query_coverage", "name_coverage", "exact", "near_exact", "exact_elsewhere",
    "truncated", "cut_share",
    # of the supplier holding it
    "via_alt_name", "both_names",
    # of the supplier's place (shared by namesakes)
    "state_agrees", "state_conflicts", "city_agrees", "city_conflicts", "postal_agrees", "postal_conflicts",
    # of the query
    "query_information", "log_namesakes_unplaced", "log_namesakes_state_pinned",
)
# Fitted by bench/match.py --calibrate (see module docstring); order as FEATURES.
WEIGHTS = (
    -13.0322, 4.8253, 6.2069, 3.5495, -1.3282, 1.4730, -1.4258,
    -0.7116, -3.2677,
    -2.3940, 4.7921,
    1.3623, -2.2332, 1.1256, -2.2669, 1.0117, -2.7062,
    0.2319, -1.0130, -0.5139,
)

# Features come in four parts: of the name, of its holder, of the place, of the query.
_HOLDER_START = FEATURES.index("via_alt_name")
_PLACE_START = FEATURES.index("state_agrees")
_TAIL_START = FEATURES.index("query_information")
_UNKNOWN_PLACE_PART = ((0.0,) * (_TAIL_START - _PLACE_START), 0.0)  # (features, utility)
_CITY_AGREES = FEATURES.index("city_agrees") - _PLACE_START
_POSTAL_AGREES = FEATURES.index("postal_agrees") - _PLACE_START
_STATE_AGREES = FEATURES.index("state_agrees") - _PLACE_START
_CITY_CONFLICTS = FEATURES.index("city_conflicts") - _PLACE_START
# Another name of a "X DBA Y" payee agrees with another name of the supplier this closely.
BOTH_NAMES_MIN_SIMILARITY = 90

_US_STATE_NAMES = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA", "COLORADO": "CO",
    "CONNECTICUT": "CT", "DELAWARE": "DE", "DISTRICT OF COLUMBIA": "DC", "FLORIDA": "FL", "GEORGIA": "GA",
    "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL", "INDIANA": "IN", "IOWA": "IA", "KANSAS": "KS",
    "KENTUCKY": "KY", "LOUISIANA": "LA", "MAINE": "ME", "MARYLAND": "MD", "MASSACHUSETTS": "MA",
    "MICHIGAN": "MI", "MINNESOTA": "MN", "MISSISSIPPI": "MS", "MISSOURI": "MO", "MONTANA": "MT",
    "NEBRASKA": "NE", "NEVADA": "NV", "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ", "NEW MEXICO": "NM",
    "NEW YORK": "NY", "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND", "OHIO": "OH", "OKLAHOMA": "OK",
    "OREGON": "OR", "PENNSYLVANIA": "PA", "RHODE ISLAND": "RI", "SOUTH CAROLINA": "SC", "SOUTH DAKOTA": "SD",
    "TENNESSEE": "TN", "TEXAS": "TX", "UTAH": "UT", "VERMONT": "VT", "VIRGINIA": "VA", "WASHINGTON": "WA",
    "WEST VIRGINIA": "WV", "WISCONSIN": "WI", "WYOMING": "WY", "PUERTO RICO": "PR", "GUAM": "GU",
    "VIRGIN ISLANDS": "VI", "AMERICAN SAMOA": "AS", "NORTHERN MARIANA ISLANDS": "MP",
}


@dataclass(frozen=True, slots=True)
class MatchResult:
    supplier_id: str | None
    supplier_name: str | None
    supplier_category: str | None
    supplier_code: str | None
    score: float
    match_type: MatchType
    decision: Decision
    runner_up: tuple[str, str, float] | None
    reason: str


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
            state=_US_STATE_NAMES.get(state_text, state_text)[:3],
            postal_code=normalize_postal_code(postal_code),
        )


@dataclass(frozen=True, slots=True)
class _Entry:
    supplier: Supplier
    names: tuple[str, ...]  # normalised keys: the main name first, then aliases and alt names
    location: Location
    digest: int


@dataclass(frozen=True, slots=True)
class _NameFeatures:
    similarity: float
    query_coverage: float
    name_coverage: float
    exact: bool
    near_exact: bool
    truncated: bool
    cut_share: float = 0.0  # share of the name's characters beyond the payee's cut


class Candidate(NamedTuple):
    """One supplier considered for a payee, with its feature vector and utility (a tuple: built
    for every namesake of a chapter name, thousands per query)."""

    supplier_id: str
    name_key: str
    features: tuple[float, ...]
    utility: float


def freeze_built_index() -> None:
    """Exempt every object alive now — a built index is millions of them — from garbage collection.

    A full collection walks all tracked objects: about a second with 350k suppliers, on the
    event loop. Call once the index is built or loaded; later changes are tracked as usual.
    """
    gc.collect()
    gc.freeze()


def _dot(weights: tuple[float, ...], values: tuple[float, ...]) -> float:
    return sum(map(operator.mul, weights, values))


def _digest(supplier: Supplier) -> int:
    return int.from_bytes(hashlib.blake2b(supplier.canonical_row().encode(), digest_size=8).digest(), "big")


def _deletions(token: str) -> list[str]:
    return [token[:i] + token[i + 1 :] for i in range(len(token))]


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


def _token_credit(token: str, other: str, cut: bool) -> float:
    """How far ``other`` counts as ``token``: same word, cut by truncation, misspelt, abbreviated."""
    if token == other or cut and (token.startswith(other) or other.startswith(token)):
        return 1.0
    if (
        len(token) >= MIN_TYPO_TOKEN
        and len(other) >= MIN_TYPO_TOKEN
        and DamerauLevenshtein.distance(token, other, score_cutoff=1) <= 1
    ):
        return 0.8
    return 0.6 if _tokens_agree(token, other) else 0.0


def _tokens_agree(a: str, b: str) -> bool:
    return a == b or a[0] == b[0] and (_is_abbreviation(a, b) or _is_abbreviation(b, a))


def _places_agree(a: str, b: str) -> bool:
    if a == b:
        return True
    tokens_a, tokens_b = a.split(), b.split()
    if len(tokens_a) == len(tokens_b):
        return all(_tokens_agree(x, y) for x, y in zip(tokens_a, tokens_b, strict=True))
    compact_a, compact_b = a.replace(" ", ""), b.replace(" ", "")
    shorter, longer = sorted((compact_a, compact_b), key=len)
    return len(shorter) >= 5 and longer.startswith(shorter)


def _location_features(query: Location, supplier: Location) -> tuple[float, ...]:
    """(state agrees, state conflicts, city agrees, city conflicts, postal agrees, postal conflicts)."""
    state_agrees = state_conflicts = city_agrees = city_conflicts = postal_agrees = postal_conflicts = 0.0
    if query.state and supplier.state:
        state_agrees, state_conflicts = (1.0, 0.0) if query.state == supplier.state else (0.0, 1.0)
    if query.city and supplier.city:
        # A namesake town in another state is no agreement.
        if not state_conflicts and _places_agree(query.city, supplier.city):
            city_agrees = 1.0
        else:
            city_conflicts = 1.0
    if query.postal_code and supplier.postal_code:
        postal_agrees, postal_conflicts = (
            (1.0, 0.0) if query.postal_code == supplier.postal_code else (0.0, 1.0)
        )
    return state_agrees, state_conflicts, city_agrees, city_conflicts, postal_agrees, postal_conflicts


def usable_alt_name(alt_name: str) -> bool:
    upper = alt_name.upper()
    return any(ch.isalpha() for ch in alt_name) and not any(marker in upper for marker in _PERSON_ALT_MARKERS)


def _supplier_names(supplier: Supplier) -> tuple[str, ...]:
    main = normalize_name(supplier.name)
    names = [main.key, *main.aliases]
    if supplier.alt_name and usable_alt_name(supplier.alt_name):
        alt = normalize_name(supplier.alt_name)
        names.extend([alt.key, *alt.aliases])
    return tuple(dict.fromkeys(name for name in names if name))


class SupplierIndex:
    """In-memory supplier index: incremental upserts and deletes, calibrated matching.

    Not thread-safe: one writer (the index service) and readers on the same event loop.
    """

    def __init__(
        self,
        match_threshold: float = 0.85,
        ambiguity_margin: float = 0.05,
        weights: tuple[float, ...] = WEIGHTS,
    ) -> None:
        if len(weights) != len(FEATURES):
            raise ValueError(f"{len(FEATURES)} weights expected, got {len(weights)}")
        self.match_threshold = match_threshold
        self.ambiguity_margin = ambiguity_margin
        self.weights = tuple(weights)
        self._entries: dict[str, _Entry] = {}
        self._name_suppliers: dict[str, set[str]] = {}  # name key → supplier ids
        self._compact_names: dict[str, set[str]] = {}  # name key without spaces → name keys
        self._postings: dict[str, set[str]] = {}  # token → name keys containing it
        self._deletions: dict[str, set[str]] = {}  # token minus one character → tokens
        self._version = 0

    # ------------------------------------------------------------------ maintenance

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, supplier_id: str) -> Supplier | None:
        entry = self._entries.get(supplier_id)
        return entry.supplier if entry else None

    @property
    def index_version(self) -> str:
        """Order-independent digest of the content: XOR of every supplier's row hash."""
        return f"{self._version:016x}"

    def upsert(self, supplier: Supplier) -> None:
        old = self._entries.get(supplier.supplier_id)
        if old is not None and old.supplier == supplier:
            return
        if old is not None:
            self._remove(old)
        entry = _Entry(
            supplier=supplier,
            names=_supplier_names(supplier),
            location=Location.of(supplier.city, supplier.state, supplier.postal_code),
            digest=_digest(supplier),
        )
        self._entries[supplier.supplier_id] = entry
        self._version ^= entry.digest
        for name in entry.names:
            self._add_name(name, supplier.supplier_id)

    def delete(self, supplier_id: str) -> bool:
        entry = self._entries.get(supplier_id)
        if entry is None:
            return False
        self._remove(entry)
        return True

    def _remove(self, entry: _Entry) -> None:
        supplier_id = entry.supplier.supplier_id
        del self._entries[supplier_id]
        self._version ^= entry.digest
        for name in entry.names:
            holders = self._name_suppliers[name]
            holders.discard(supplier_id)
            if not holders:
                del self._name_suppliers[name]
                self._forget_name(name)

    def _add_name(self, name: str, supplier_id: str) -> None:
        holders = self._name_suppliers.get(name)
        if holders is not None:
            holders.add(supplier_id)
            return
        self._name_suppliers[name] = {supplier_id}
        self._compact_names.setdefault(name.replace(" ", ""), set()).add(name)
        for token in set(name.split()):
            postings = self._postings.get(token)
            if postings is None:
                postings = self._postings[token] = set()
                if len(token) >= MIN_TYPO_TOKEN:
                    for variant in _deletions(token):
                        self._deletions.setdefault(variant, set()).add(token)
            postings.add(name)

    def _forget_name(self, name: str) -> None:
        compact = name.replace(" ", "")
        self._compact_names[compact].discard(name)
        if not self._compact_names[compact]:
            del self._compact_names[compact]
        for token in set(name.split()):
            postings = self._postings[token]
            postings.discard(name)
            if postings:
                continue
            del self._postings[token]
            if len(token) >= MIN_TYPO_TOKEN:
                for variant in set(_deletions(token)):
                    spellings = self._deletions[variant]
                    spellings.discard(token)
                    if not spellings:
                        del self._deletions[variant]

    # ------------------------------------------------------------------ snapshot

    def save(self, path: str | Path) -> None:
        """Write a snapshot: a pickle of the derived structures, so loading re-normalises nothing."""
        state = {
            "format": SNAPSHOT_FORMAT,
            "normalisation": _NORMALISATION_DIGEST,
            "rows": [
                (
                    tuple(getattr(entry.supplier, name) for name in SUPPLIER_FIELDS),
                    entry.names,
                    (entry.location.city, entry.location.state, entry.location.postal_code),
                    entry.digest,
                )
                for entry in self._entries.values()
            ],
            "name_suppliers": self._name_suppliers,
            "compact_names": self._compact_names,
            "postings": self._postings,
            "deletions": self._deletions,
            "version": self._version,
        }
        with Path(path).open("wb") as handle:
            pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(
        cls, path: str | Path, match_threshold: float = 0.85, ambiguity_margin: float = 0.05
    ) -> SupplierIndex:
        """A new index from a snapshot written by ``save`` (a trusted, worker-local file)."""
        return cls(match_threshold=match_threshold, ambiguity_margin=ambiguity_margin).restore(path)

    def restore(self, path: str | Path) -> SupplierIndex:
        """Fill this empty index from a snapshot, keeping its thresholds and weights; returns it.

        Raises ``ValueError`` for a snapshot of another format or normalisation code (rebuild).
        """
        if self._entries:
            raise ValueError("restore needs an empty index")
        # Millions of small containers: the cyclic GC would rescan them over and over while
        # they are created (about 3x slower); none of them forms a cycle.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with Path(path).open("rb") as handle:
                state = pickle.load(handle)  # noqa: S301 - the worker's own snapshot
            if state.get("format") != SNAPSHOT_FORMAT:
                raise ValueError(f"unsupported snapshot format {state.get('format')!r}")
            if state.get("normalisation") != _NORMALISATION_DIGEST:
                raise ValueError("snapshot written by other normalisation code")
            for values, names, place, digest in state["rows"]:
                supplier = Supplier(*values)
                self._entries[supplier.supplier_id] = _Entry(supplier, names, Location(*place), digest)
        finally:
            if collecting:
                gc.enable()
        self._name_suppliers = state["name_suppliers"]
        self._compact_names = state["compact_names"]
        self._postings = state["postings"]
        self._deletions = state["deletions"]
        self._version = state["version"]
        return self

    # ------------------------------------------------------------------ matching

    def match(
        self,
        name: str,
        city: str | None = None,
        state: str | None = None,
        postal_code: str | None = None,
    ) -> MatchResult:
        query = normalize_name(name)
        if not query.key:
            return _no_match(0.0, None, "no name to match")
        location = Location.of(city, state, postal_code)
        candidates = self.candidates(query, location)
        if not candidates:
            return _no_match(0.0, None, "no supplier with a similar name")
        return self._decide(candidates, location)

    def candidates(self, query: NormalizedName, location: Location) -> list[Candidate]:
        """Every supplier scored for this payee, best first (used by ``match`` and calibration)."""
        queries = (query.key, *query.aliases)
        loose = tuple(dict.fromkeys(r for text in queries for r in loose_keys(text) if r not in queries))
        truncation_possible = len(query.display) >= CUT_NAME_MIN_CHARS
        exact_names = self._exact_names(queries)
        names = exact_names | self._exact_names(loose) | self._respelt_names(queries + loose)
        # An exact name where the payee is settles it; otherwise look for similar names too.
        if not any(self._placed_by(name, location) for name in names):
            names.update(self._similar_names(queries + loose, truncation_possible))
        loose_compacts = {reading.replace(" ", "") for reading in loose}
        exact_somewhere = bool(exact_names)
        located = bool(location.city or location.state or location.postal_code)
        name_weights = self.weights[:_HOLDER_START]
        alt_name_weight, both_names_weight = self.weights[_HOLDER_START:_PLACE_START]
        place_weights = self.weights[_PLACE_START:_TAIL_START]
        tail_weights = self.weights[_TAIL_START:]
        information = min(self._information(query.tokens), 40.0) / 10.0
        tail_utility = tail_weights[0] * information
        # Namesakes share a handful of places: score each place once per query.
        place_parts: dict[Location, tuple[tuple[float, ...], float]] = {}
        # ... and chapters their parent's other names: compare each once.
        agreements: dict[tuple[tuple[str, ...], str], bool] = {}

        def agrees(texts: tuple[str, ...], name: str) -> bool:
            if (texts, name) not in agreements:
                agreements[texts, name] = any(_names_agree(text, name, truncation_possible) for text in texts)
            return agreements[texts, name]

        best: dict[str, Candidate] = {}
        for name_key in sorted(names):
            text, name_features = max(
                ((text, self._name_features(text, name_key, truncation_possible)) for text in queries),
                key=lambda scored: (scored[1].exact, scored[1].near_exact, scored[1].similarity),
            )
            if not name_features.near_exact and name_key.replace(" ", "") in loose_compacts:
                # Scored on what the payee wrote, but known to be the same name but for a slip.
                name_features = dataclasses.replace(name_features, near_exact=True)
            other_texts = tuple(other for other in queries if other != text)
            holders = self._name_suppliers[name_key]
            name_part = (
                1.0,
                name_features.similarity,
                name_features.query_coverage,
                name_features.name_coverage,
                float(name_features.exact),
                float(name_features.near_exact),
                float(exact_somewhere and not name_features.exact),
                float(name_features.truncated),
                name_features.cut_share,
            )
            # Per holder only the holder's features, the place and the namesake term vary: the
            # rest of the utility is summed once per name (chapters have thousands of holders).
            name_utility = _dot(name_weights, name_part) + tail_utility
            places = []
            for supplier_id in holders:
                entry = self._entries[supplier_id]
                place = place_parts.get(entry.location) if located else _UNKNOWN_PLACE_PART
                if place is None:
                    values = _location_features(location, entry.location)
                    place = place_parts[entry.location] = (values, _dot(place_weights, values))
                places.append((supplier_id, entry, place))
            # Suppliers that carry the name as their own, not as an alt name (a DBA or parent).
            namesakes = math.log(max(1, sum(entry.names[0] == name_key for _, entry, _ in places)))
            # The only namesake in the payee's state (with no city against it) is pinned by the state.
            in_state = [
                supplier_id for supplier_id, entry, place in places
                if entry.names[0] == name_key and place[0][_STATE_AGREES] and not place[0][_CITY_CONFLICTS]
            ]
            alone_in_state = in_state[0] if len(in_state) == 1 else None
            for supplier_id, entry, (place_values, place_utility) in places:
                # Many namesakes mean more unindexed ones too, unless the city or ZIP pins this one;
                # the state alone pins it less (an unindexed namesake may share the state).
                placed = place_values[_CITY_AGREES] or place_values[_POSTAL_AGREES]
                state_pinned = not placed and supplier_id == alone_in_state
                unplaced = 0.0 if placed or state_pinned else namesakes
                pinned_namesakes = namesakes if state_pinned else 0.0
                via_alt_name = 1.0 if name_key != entry.names[0] else 0.0
                # "X DBA Y" naming both of a supplier's names: its other name is the payee's other.
                both_names = float(bool(other_texts) and any(
                    agrees(other_texts, other) for other in entry.names if other != name_key
                ))
                utility = (
                    name_utility + alt_name_weight * via_alt_name + both_names_weight * both_names
                    + place_utility + tail_weights[1] * unplaced + tail_weights[2] * pinned_namesakes
                )
                known = best.get(supplier_id)
                if known is None or utility > known.utility:
                    features = (
                        *name_part, via_alt_name, both_names, *place_values,
                        information, unplaced, pinned_namesakes,
                    )
                    best[supplier_id] = Candidate(supplier_id, name_key, features, utility)
        return sorted(best.values(), key=lambda candidate: (-candidate.utility, candidate.supplier_id))

    def _exact_names(self, queries: Iterable[str]) -> set[str]:
        names: set[str] = set()
        for text in queries:
            if text in self._name_suppliers:
                names.add(text)
            names.update(self._compact_names.get(text.replace(" ", ""), ()))
        return names

    def _respelt_names(self, queries: Iterable[str]) -> set[str]:
        """Indexed names equal to a query once its unknown tokens are respelt (one typo each)."""
        found: set[str] = set()
        for text in queries:
            variants: list[list[str]] = [[]]
            for token in text.split():
                spellings = self._spellings(token) or [token]
                variants = [variant + [spelling] for variant in variants for spelling in spellings]
                if len(variants) > MAX_RESPELLINGS:
                    break
            else:
                found.update(" ".join(v) for v in variants if " ".join(v) in self._name_suppliers)
        found.difference_update(queries)
        return found

    def _placed_by(self, name: str, location: Location) -> bool:
        """Whether a holder of ``name`` is where the payee is (or the payee gives no place)."""
        if not (location.city or location.state or location.postal_code):
            return True
        for supplier_id in self._name_suppliers[name]:
            state_agrees, _, city_agrees, city_conflicts, postal_agrees, _ = _location_features(
                location, self._entries[supplier_id].location
            )
            if city_agrees or postal_agrees or (state_agrees and not city_conflicts):
                return True
        return False

    def _spellings(self, token: str) -> list[str]:
        """The token if indexed (plus far commoner spellings one edit away when it is rare), else
        indexed tokens one edit away, commonest first: among words one slip away, the payee most
        likely meant the one most often written."""
        postings = self._postings.get(token)
        if len(token) < MIN_TYPO_TOKEN:
            return [token] if postings is not None else []
        if postings is not None and len(postings) > RARE_SPELLING_NAMES:
            return [token]
        found = set(self._deletions.get(token, ()))  # the payee dropped a character
        for variant in _deletions(token):
            if variant in self._postings:  # the payee added a character
                found.add(variant)
            found.update(self._deletions.get(variant, ()))  # substituted or swapped one
        if postings is None:
            return sorted(found, key=lambda spelling: (-len(self._postings[spelling]), spelling))[:MAX_CORRECTIONS]
        # A rare indexed token: itself first, then much more common spellings one edit away.
        common = [
            spelling for spelling in found
            if len(self._postings[spelling]) >= COMMON_SPELLING_FACTOR * len(postings)
        ]
        common.sort(key=lambda spelling: (-len(self._postings[spelling]), spelling))
        return [token, *common[: MAX_CORRECTIONS - 1]]

    def _similar_names(self, queries: Iterable[str], truncation_possible: bool) -> set[str]:
        """The blocked names closest to each query by up to three rankings: WRatio (word order,
        partial matches), token-sort ratio (which WRatio's partial matching lets short names
        crowd out) and, for a name that may be cut, the ratio to each name's prefix of the
        query's length."""
        similar: set[str] = set()
        for text in queries:
            anchors = []
            for token in dict.fromkeys(text.split()):
                spellings = self._spellings(token)
                if spellings:
                    postings = [self._postings[spelling] for spelling in spellings]
                    anchors.append(postings[0] if len(postings) == 1 else set().union(*postings))
            anchors.sort(key=len)
            blocked = _block(anchors[:MAX_ANCHORS], text)
            if not blocked:
                continue
            # Sorted so that ties fall the same way in every worker (set order is per process).
            ordered = sorted(blocked)
            rankings = [
                (fuzz.WRatio, ordered, TOP_NAMES),
                (fuzz.token_sort_ratio, ordered, TOP_NAMES_SECONDARY),
            ]
            if truncation_possible:
                rankings.append((fuzz.ratio, [name[: len(text)] for name in ordered], TOP_NAMES_SECONDARY))
            for scorer, choices, limit in rankings:
                found = process.extract(
                    text, choices, scorer=scorer, processor=None, limit=limit, score_cutoff=MIN_BLOCKED_SCORE
                )
                similar.update(ordered[position] for _choice, _score, position in found)
        return similar

    def _idf(self, token: str) -> float:
        names_with_token = len(self._postings.get(token, ()))
        return math.log((len(self._name_suppliers) + 1) / (names_with_token + 1)) + 1.0

    def _information(self, tokens: Iterable[str]) -> float:
        return sum(self._idf(token) for token in tokens)

    def _name_features(self, query: str, name: str, truncation_possible: bool) -> _NameFeatures:
        if query == name or query.replace(" ", "") == name.replace(" ", ""):
            # Zero slips are within two: exact names are near-exact too, and score above them.
            return _NameFeatures(1.0, 1.0, 1.0, exact=True, near_exact=True, truncated=False)
        similarity = max(fuzz.ratio(query, name), fuzz.token_sort_ratio(query, name)) / 100.0
        truncated = False
        cut_share = 0.0
        name_tokens = name.split()
        if truncation_possible:
            cut_similarity = _prefix_ratio(query, name) / 100.0
            if cut_similarity > similarity:
                similarity, truncated = cut_similarity, True
                cut_share = 1.0 - len(query) / len(name)
                # Only the part of the name the payee system kept can be compared.
                name_tokens = name[: len(query)].split()
        query_tokens = query.split()
        query_coverage = self._coverage(query_tokens, name_tokens, truncated)
        name_coverage = self._coverage(name_tokens, query_tokens, truncated)
        return _NameFeatures(
            similarity, query_coverage, name_coverage, exact=False,
            near_exact=_near_exact(query, name, truncation_possible),
            truncated=truncated,
            cut_share=cut_share,
        )

    def _coverage(self, tokens: list[str], other: list[str], truncated: bool) -> float:
        """IDF-weighted share of ``tokens`` found in ``other`` (typos, abbreviations, cut last token)."""
        total = found = 0.0
        present = set(other)
        for position, token in enumerate(tokens):
            weight = self._idf(token)
            total += weight
            if token in present:  # the common case, full credit without comparing every token
                found += weight
                continue
            cut = truncated and position == len(tokens) - 1
            found += weight * max(
                (
                    _token_credit(token, candidate, cut or (truncated and candidate is other[-1]))
                    for candidate in other
                ),
                default=0.0,
            )
        return found / total if total else 0.0

    def _decide(self, candidates: list[Candidate], location: Location) -> MatchResult:
        top_utility = candidates[0].utility
        # Softmax with a "none of these" option at utility 0, shifted for numerical safety.
        shift = max(top_utility, 0.0)
        weights = [math.exp(candidate.utility - shift) for candidate in candidates]
        total = math.exp(-shift) + math.fsum(weights)
        probabilities = [weight / total for weight in weights]
        top, score = candidates[0], probabilities[0]
        runner = (candidates[1], probabilities[1]) if len(candidates) > 1 else None
        runner_up = self._describe(*runner) if runner else None
        supplier = self._entries[top.supplier_id].supplier
        match_type: MatchType = "exact" if top.features[FEATURES.index("exact")] else "fuzzy"
        margin = score - (runner[1] if runner else 0.0)
        if score >= self.match_threshold and margin >= self.ambiguity_margin:
            return _result(supplier, score, match_type, "matched", runner_up, _why(top, location))
        namesakes = [
            probability
            for candidate, probability in zip(candidates, probabilities, strict=True)
            if candidate.name_key == top.name_key
        ]
        shared = math.fsum(namesakes)
        if len(namesakes) > 1 and shared >= self.match_threshold:
            return _result(
                supplier, score, match_type, "ambiguous", runner_up,
                f"{len(namesakes)} suppliers share this name and the location does not decide",
            )
        return _no_match(
            score,
            self._describe(top, score),
            f"best candidate {score:.2f} is below the {self.match_threshold:.2f} threshold",
        )

    def _describe(self, candidate: Candidate, probability: float) -> tuple[str, str, float]:
        name = self._entries[candidate.supplier_id].supplier.name
        return candidate.supplier_id, name, round(probability, 4)


def _names_agree(text: str, name: str, truncation_possible: bool) -> bool:
    """Whether ``text`` is ``name`` or, when it may be cut, the beginning of it."""
    return fuzz.token_sort_ratio(text, name) >= BOTH_NAMES_MIN_SIMILARITY or (
        truncation_possible and _prefix_ratio(text, name) >= BOTH_NAMES_MIN_SIMILARITY
    )


def _prefix_ratio(text: str, name: str) -> float:
    """Similarity of ``text`` to the first ``len(text)`` characters of a longer ``name`` (else 0)."""
    return fuzz.ratio(text, name[: len(text)]) if len(name) > len(text) else 0.0


def _near_exact(query: str, name: str, truncation_possible: bool) -> bool:
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


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _block(anchors: list[set[str]], query: str) -> set[str]:
    """Names sharing at least two of the rarest query tokens, or one rare token.

    Intersections run in C over the smaller set, so common tokens cost little; a rare token
    alone still brings its names so that one misspelt or missing word does not lose a match.
    """
    if not anchors:
        return set()
    if len(anchors) == 1:
        blocked = set(anchors[0])
    else:
        blocked = set()
        for anchor in anchors:
            if len(anchor) <= RARE_TOKEN_NAMES:
                blocked |= anchor
        for i, first in enumerate(anchors):
            for second in anchors[i + 1 :]:
                blocked |= first & second
    if len(blocked) > MAX_SCORED_NAMES and len(anchors) > 2:
        # Too generic for pairs: require three shared tokens.
        triples: set[str] = set()
        for i, first in enumerate(anchors):
            for j, second in enumerate(anchors[i + 1 :], start=i + 1):
                pair = first & second
                for third in anchors[j + 1 :]:
                    triples |= pair & third
        blocked = triples or blocked
    if len(blocked) > MAX_SCORED_NAMES:
        # Still generic: names closest in length share the most with a query made of common words.
        closest = heapq.nsmallest(
            MAX_SCORED_NAMES, blocked, key=lambda name: (abs(len(name) - len(query)), name)
        )
        blocked = set(closest)
    return blocked


def _why(candidate: Candidate, location: Location) -> str:
    features = dict(zip(FEATURES, candidate.features, strict=True))
    if features["exact"]:
        parts = ["exact name"]
    elif features["near_exact"]:
        parts = ["same name but for a slip"]
    else:
        parts = [f"name similarity {features['similarity']:.2f}"]
    if features["via_alt_name"]:
        parts.append("via alt name")
    if features["truncated"]:
        parts.append("payee name truncated")
    agreed = [place for place in ("city", "state", "postal") if features[f"{place}_agrees"]]
    if agreed:
        parts.append(f"{' and '.join(agreed)} agree")
    elif not (location.city or location.state or location.postal_code):
        parts.append("no location given")
    return "; ".join(parts)


def _result(
    supplier: Supplier,
    score: float,
    match_type: MatchType,
    decision: Decision,
    runner_up: tuple[str, str, float] | None,
    reason: str,
) -> MatchResult:
    return MatchResult(
        supplier_id=supplier.supplier_id,
        supplier_name=supplier.name,
        supplier_category=supplier.category or None,
        supplier_code=supplier.code or None,
        score=score,
        match_type=match_type,
        decision=decision,
        runner_up=runner_up,
        reason=reason,
    )


def _no_match(score: float, nearest: tuple[str, str, float] | None, reason: str) -> MatchResult:
    """No supplier; ``runner_up`` carries the nearest rejected candidate for reviewers."""
    return MatchResult(
        supplier_id=None,
        supplier_name=None,
        supplier_category=None,
        supplier_code=None,
        score=score,
        match_type="none",
        decision="none",
        runner_up=nearest,
        reason=reason,
    )
