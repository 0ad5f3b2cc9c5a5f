"""Supplier index and matcher: exact normalised hit, else blocked fuzzy candidates, then a
calibrated choice between them — or "none of these", which in an open world is the commonest
right answer: most payees of a payment file are not in the supplier master.

How a payee is matched:

1. Normalise the payee name (``domain.normalize``); its key and any DBA alias are queries, and
   so are its loose readings (a slipped or glued legal form undone, ``loose_keys``) and its
   readings without a descriptor tail ("ACME WIRELESS", "ACME US INC" → "ACME").
2. Candidate names: exact key hits (also after respelling unknown tokens to indexed ones one
   edit away), and — unless an exact hit already sits where the payee is — names that share
   the query's rarest tokens (an inverted index over distinct names, with a one-deletion index
   so misspelt tokens still find their postings). At most ``MAX_SCORED_NAMES`` names are
   ranked (WRatio, token-sort ratio and, for a name that may be cut, the ratio to each name's
   prefix) and the best few of each ranking scored fully: never a scan of the whole list.
3. Each supplier behind a candidate name gets the features of ``domain.matching.features``:
   evidence from the name (similarity, IDF-weighted coverage, exact or a slip away, a real
   word changed into another, an affiliated body's word on one side), from the holder (legal
   form and organisation kind agreement), from the places (street, state, city, ZIP, country, the
   source's default place, a local body with an everyday name and nothing placing the payee)
   and from the query (how informative and how common in the wider world its name is). A
   softmax with a "none of these" option at utility 0 turns utilities into probabilities.
4. Decision: ``matched`` when the best probability clears ``match_threshold`` (and beats the
   runner-up by ``ambiguity_margin``); the same organisation registered several times under
   one name and place counts as one (the lowest id stands for the group); ``ambiguous`` (to
   review, candidates listed) when namesakes together, or the best candidate alone, are at
   least ``review_floor`` likely, or all candidates together are (a chapter's name misspelt:
   one of a hundred chapters, no telling which); else ``none``. A payee written as one common
   surname alone ("HARRIS") is never ``matched`` unless its town, ZIP or street agrees: it names
   a person or any of the many firms of that name as often as the supplier listed.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import gc
import hashlib
import heapq
import math
import operator
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import chain, islice, repeat
from typing import Literal, NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import DamerauLevenshtein

from domain.address import Agreement, registered_place, street_agreement, street_key
from domain.matching import features as F
from domain.matching.features import (
    FEATURES,
    HOLDER_START,
    MIN_TYPO_TOKEN,
    PLACE_START,
    TAIL_START,
    WEIGHTS,
    Evidence,
    HolderKind,
    Location,
    PayeeForms,
    QueryPlace,
)
from domain.matching.world import JOINERS, commonness, warm_up
from domain.normalize import CUT_NAME_MIN_CHARS, NormalizedName, loose_keys, normalize_name
from domain.suppliers import Supplier
from domain.vocabulary import DESCRIPTOR_TAIL_WORDS, US_STATE_NAME_WORDS

MatchType = Literal["exact", "fuzzy", "none"]
Decision = Literal["matched", "ambiguous", "none"]

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
MAX_SCORED_NAMES = 1000
MIN_BLOCKED_SCORE = 60  # a ranking score below this is not the same name
TOP_NAMES = 8
TOP_NAMES_SECONDARY = 4  # from each of the other rankings, which mostly agree with WRatio's
# A name held this often (chapters: KNIGHTS OF COLUMBUS 1,810 times) has its holders gathered by
# what a payee's place can tell apart once, not looked up one by one for every payee.
MANY_HOLDERS = 64
# Net allocations of tracked objects between young collections once the index is built (Python: 700).
YOUNG_COLLECTION_THRESHOLD = 50_000
# Candidates a result lists for reviewers.
LISTED_CANDIDATES = 5
# Alt names that are a care-of line or a trustee are people, not names of the supplier.
_PERSON_ALT_MARKERS = ("TTEE", "TRUSTEE", "ET AL", "C/O", "C-O", "%", "ATTN")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
# Another name of a "X DBA Y" payee agrees with another name of the supplier this closely.
BOTH_NAMES_MIN_SIMILARITY = 90
# A reading without its descriptor tail must keep a name this distinctive (world.commonness).
MAX_TRIMMED_COMMONNESS = 0.7

_UNKNOWN_PLACE = Location("", "", "")
_CITY_AGREES, _POSTAL_AGREES, _STREET_AGREES = (FEATURES.index(name) - PLACE_START for name in F.PINNING_PLACE)
_STATE_AGREES = FEATURES.index("state_agrees") - PLACE_START
_CITY_CONFLICTS = FEATURES.index("city_conflicts") - PLACE_START
_EXACT = FEATURES.index("exact")
_BY_UTILITY = operator.attrgetter("utility")


def _length_and_name(name: str) -> tuple[int, str]:
    return len(name), name


@dataclass(frozen=True, slots=True)
class CandidateView:
    """A weighed supplier as a result lists it for reviewers."""

    supplier_id: str
    supplier_name: str
    probability: float
    city: str
    state: str
    evidence: tuple[Evidence, ...]


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
    evidence: tuple[Evidence, ...] = ()
    candidates: tuple[CandidateView, ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    supplier: Supplier
    names: tuple[str, ...]  # normalised keys: the main name first, then aliases and alt names
    location: Location
    kind: HolderKind
    digest: int
    street: str | None  # domain.address.street_key of the supplier's address, interned (namesakes share offices)


@dataclass(frozen=True, slots=True)
class _NameFeatures:
    similarity: float
    query_coverage: float
    name_coverage: float
    exact: bool
    near_exact: bool
    truncated: bool
    cut_share: float = 0.0  # share of the name's characters beyond the payee's cut
    real_word_edit: bool = False
    invented_word_edit: bool = False
    affiliated_body: bool = False
    payee_words_unmatched: float = 0.0  # IDF share of payee words with no counterpart in the name
    name_words_unmatched: float = 0.0  # and of the name's words with none in the payee

    @property
    def words_substituted(self) -> float:
        """How much each side has that the other lacks ("MADISON SOUTHERN BAND BOOSTERS" and
        "MADISON CENTRAL BAND BOOSTERS"): a word of one name in place of a word of the other
        names a sibling body, where words only one side has are a dropped or an added word."""
        return min(1.0 - self.query_coverage, 1.0 - self.name_coverage)

    @property
    def word_swapped(self) -> bool:
        """A whole word of the payee in place of a whole word of the name, not a slip: POLICE for
        FIRE, WATER for PARK. However long the names, that is how sibling bodies differ; a
        payee clerk's typo leaves a near word, and a shifted space leaves a near-exact name."""
        return self.payee_words_unmatched > 0.0 and self.name_words_unmatched > 0.0 and not self.near_exact


_EXACT_NAME = _NameFeatures(1.0, 1.0, 1.0, exact=True, near_exact=True, truncated=False)


class Candidate(NamedTuple):
    """One supplier considered for a payee, with its feature vector and utility (a tuple: built
    for every namesake of a chapter name, thousands per query)."""

    supplier_id: str
    name_key: str
    features: tuple[float, ...]
    utility: float


# A supplier's place as the payee's place sees it: its state; whether its city and its ZIP agree.
SeenPlace = tuple[str, bool | None, bool | None]
# Holders of a name that get one feature vector: (seen place, kind, own name, both names, street).
_HolderGroup = tuple[SeenPlace, HolderKind, bool, bool, Agreement]


class _Bucket(NamedTuple):
    place: Location  # one of the holders'
    members: list[str]  # supplier ids


@dataclass(slots=True)
class _Places:
    """Holders of a name that share a state, a kind of body and whether the name is their own,
    gathered at each grain a payee's place tells them apart by."""

    everyone: _Bucket
    by_initial: dict[str, tuple[_Bucket, dict[str, _Bucket]]]  # town's initial → its holders, and per town
    by_place: dict[Location, list[str]]

    def alike(self, location: Location) -> Iterable[tuple[Location, list[str]]]:
        """Buckets of holders that look alike to a payee at ``location`` (``_SeenBy``): all of
        them when it gives neither town nor ZIP; those of towns with another initial together
        when it gives a town (``features.places_agree`` needs the same first letter)."""
        if location.postal_code:
            return self.by_place.items()
        if not location.city:
            return (self.everyone,)
        initial = location.city[0]
        buckets: list[tuple[Location, list[str]]] = [
            bucket for first, (bucket, _) in self.by_initial.items() if first != initial
        ]
        if initial in self.by_initial:
            buckets.extend(self.by_initial[initial][1].values())
        return buckets


# A name's holders by (state, kind, own name).
_HolderPlaces = dict[tuple[str, HolderKind, bool], _Places]


class _Scored(NamedTuple):
    """Holders of one name that share a feature vector: one utility for all of them."""

    name_key: str
    seen: SeenPlace
    features: tuple[float, ...]
    utility: float
    members: list[str]  # supplier ids


class Reading(NamedTuple):
    """A text the payee's name is compared as; ``descriptor_dropped`` when a tail was cut."""

    text: str
    descriptor_dropped: bool


def freeze_built_index() -> None:
    """Exempt every object alive now — a built index is millions of them — from garbage collection,
    and collect young objects less often from now on.

    A full collection walks all tracked objects: about a second with 350k suppliers, on the
    event loop. Call once the index is built or loaded; later changes are tracked as usual.
    Matching a record then makes and drops thousands of tracked objects (its result's models),
    which reference counting frees: at Python's default threshold, young collections walking
    them took a tenth of the core's time.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: an index being filled creates millions of small
    containers, none of them in a cycle, and each collection would rescan all made so far
    (a third of a 350k-supplier build, three times the time of a snapshot load)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def supplier_digest(supplier: Supplier) -> int:
    return int.from_bytes(hashlib.blake2b(supplier.canonical_row().encode(), digest_size=8).digest(), "big")


def deletions(token: str) -> list[str]:
    return [token[:i] + token[i + 1 :] for i in range(len(token))]


def usable_alt_name(alt_name: str) -> bool:
    upper = alt_name.upper()
    # ASCII (the common case) has its letters found in C; other text character by character.
    has_letter = _ASCII_LETTER.search(alt_name) is not None if alt_name.isascii() else any(ch.isalpha() for ch in alt_name)
    return has_letter and not any(marker in upper for marker in _PERSON_ALT_MARKERS)


def _supplier_names(supplier: Supplier, main: NormalizedName) -> tuple[str, ...]:
    names = [main.key, *main.aliases]
    if supplier.alt_name and usable_alt_name(supplier.alt_name):
        alt = normalize_name(supplier.alt_name)
        names.extend([alt.key, *alt.aliases])
    return tuple(dict.fromkeys(name for name in names if name))


def _add(table: dict[str, tuple[str, ...]], key: str, value: str) -> None:
    """Add a value not yet there to ``key``'s few values."""
    table[key] = (*table.get(key, ()), value)


def _discard(table: dict[str, tuple[str, ...]], key: str, value: str) -> bool:
    """Remove ``value`` from ``key``'s values, and the key once it has none; whether any are left."""
    kept = tuple(other for other in table[key] if other != value)
    if kept:
        table[key] = kept
    else:
        del table[key]
    return bool(kept)


def descriptor_readings(key: str) -> tuple[str, ...]:
    """The key without a tail of descriptor words ("ACME MERCHANT ACCOUNT" → "ACME"), when what
    is left still names something: not a dangling "BANK OF", not one everyday word ("FIRE")."""
    tokens = key.split()
    kept = len(tokens)
    while kept > 1 and tokens[kept - 1] in DESCRIPTOR_TAIL_WORDS:
        kept -= 1
    rest = tokens[:kept]
    if kept == len(tokens) or rest[-1] in JOINERS or commonness(rest) > MAX_TRIMMED_COMMONNESS:
        return ()
    return (" ".join(rest),)


# A few hundred kinds of holder among hundreds of thousands of suppliers: one object each.
_HOLDER_KINDS: dict[HolderKind, HolderKind] = {}


def shared_kind(kind: HolderKind) -> HolderKind:
    return _HOLDER_KINDS.setdefault(kind, kind)


def shared_street(street: str | None) -> str | None:
    return sys.intern(street) if street else None


# Suppliers share places (21k among 350k suppliers) and, less often, addresses: one object each.
_place = functools.lru_cache(maxsize=1 << 16)(Location.of)
_street = functools.lru_cache(maxsize=1 << 16)(lambda address: shared_street(street_key(address)))


def make_entry(supplier: Supplier) -> Entry:
    main = normalize_name(supplier.name)
    place = registered_place(supplier)
    kind = HolderKind.of(supplier, main, place.state)
    return Entry(
        supplier=supplier,
        names=_supplier_names(supplier, main),
        location=_place(place.city, place.state, place.postal_code),
        kind=shared_kind(kind),
        digest=supplier_digest(supplier),
        street=_street(place.address),
    )


class SupplierIndex:
    """In-memory supplier index: incremental upserts and deletes, calibrated matching.

    Not thread-safe: one writer (the index service) and readers on the same event loop.
    Snapshots: ``domain.matching.snapshot``.
    """

    def __init__(
        self,
        match_threshold: float = 0.85,
        ambiguity_margin: float = 0.05,
        weights: tuple[float, ...] = WEIGHTS,
        review_floor: float = 0.5,
    ) -> None:
        if len(weights) != len(FEATURES):
            raise ValueError(f"{len(FEATURES)} weights expected, got {len(weights)}")
        self.match_threshold = match_threshold
        self.ambiguity_margin = ambiguity_margin
        # Namesakes that together are at least this likely go to review as ambiguous.
        self.review_floor = review_floor
        self.weights = tuple(weights)
        warm_up()  # load the word frequencies now, not on the first payee
        self.entries: dict[str, Entry] = {}
        # A million keys, most of them with one value: tuples (48 bytes for one, a set 216),
        # except the postings, which are intersected and grow to tens of thousands of names.
        self.name_suppliers: dict[str, tuple[str, ...]] = {}  # name key → supplier ids
        self.compact_names: dict[str, tuple[str, ...]] = {}  # name key without spaces → name keys
        self.postings: dict[str, set[str]] = {}  # token → name keys containing it
        self.deletion_index: dict[str, tuple[str, ...]] = {}  # token minus one character → tokens
        # Postings of common tokens sorted by name length, made when a query needs them (not snapshotted).
        self._length_sorted: dict[str, list[str]] = {}
        # Holders of names of many (``_holder_places``), likewise.
        self._places: dict[str, _HolderPlaces] = {}
        self.version = 0

    # ------------------------------------------------------------------ maintenance

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, supplier_id: str) -> Supplier | None:
        entry = self.entries.get(supplier_id)
        return entry.supplier if entry else None

    @property
    def index_version(self) -> str:
        """Order-independent digest of the content: XOR of every supplier's row hash."""
        return f"{self.version:016x}"

    def upsert(self, supplier: Supplier) -> None:
        old = self.entries.get(supplier.supplier_id)
        if old is not None and old.supplier == supplier:
            return
        if old is not None:
            self._remove(old)
        entry = make_entry(supplier)
        self.entries[supplier.supplier_id] = entry
        self.version ^= entry.digest
        for name in entry.names:
            self._add_name(name, supplier.supplier_id)

    def upsert_many(self, suppliers: Iterable[Supplier]) -> None:
        """Upsert each of a bulk load (a build from a file), the cyclic GC paused meanwhile."""
        with gc_paused():
            for supplier in suppliers:
                self.upsert(supplier)

    def delete(self, supplier_id: str) -> bool:
        entry = self.entries.get(supplier_id)
        if entry is None:
            return False
        self._remove(entry)
        return True

    def _remove(self, entry: Entry) -> None:
        supplier_id = entry.supplier.supplier_id
        del self.entries[supplier_id]
        self.version ^= entry.digest
        for name in entry.names:
            self._places.pop(name, None)
            if not _discard(self.name_suppliers, name, supplier_id):
                self._forget_name(name)

    def _add_name(self, name: str, supplier_id: str) -> None:
        holders = self.name_suppliers.get(name)
        if holders is not None:
            self.name_suppliers[name] = (*holders, supplier_id)
            if self._places:
                self._places.pop(name, None)
            return
        self.name_suppliers[name] = (supplier_id,)
        _add(self.compact_names, name.replace(" ", ""), name)
        for token in set(name.split()):
            if self._length_sorted:
                self._length_sorted.pop(token, None)
            postings = self.postings.get(token)
            if postings is None:
                postings = self.postings[token] = set()
                if len(token) >= MIN_TYPO_TOKEN:
                    for variant in set(deletions(token)):
                        _add(self.deletion_index, variant, token)
            postings.add(name)

    def _forget_name(self, name: str) -> None:
        _discard(self.compact_names, name.replace(" ", ""), name)
        for token in set(name.split()):
            self._length_sorted.pop(token, None)
            postings = self.postings[token]
            postings.discard(name)
            if postings:
                continue
            del self.postings[token]
            if len(token) >= MIN_TYPO_TOKEN:
                for variant in set(deletions(token)):
                    _discard(self.deletion_index, variant, token)

    # ------------------------------------------------------------------ matching

    def match(
        self,
        name: str,
        city: str | None = None,
        state: str | None = None,
        postal_code: str | None = None,
        country: str | None = None,
        default_state: str | None = None,
        default_country: str | None = None,
        address_lines: Sequence[str] | str | None = None,
    ) -> MatchResult:
        """The supplier this payee is, or none. ``default_*`` is where the payee's source system
        usually pays (weak evidence, used only where the record gives no state or country);
        the street of ``address_lines`` is compared with each candidate's."""
        query = normalize_name(name)
        if not query.key:
            return _no_match(0.0, None, "no name to match")
        place = QueryPlace.for_payee(
            query, Location.of(city, state, postal_code), country, default_state, default_country,
            street_key(address_lines),
        )
        groups = self._scored_groups(query, place)
        if not groups:
            return _no_match(0.0, None, "no supplier with a similar name")
        result = self._decide(_ranked(groups), place)
        if result.decision != "matched" or F.pinned_by_place(result.evidence):
            return result
        if F.lone_common_surname(query):
            rule, text = "lone_common_surname", "a lone common surname"
        elif F.reads_as_person(query):
            rule, text = "person_name", "a person's name"
        else:
            return result
        # However likely among the suppliers listed, the payee is as likely someone off the list.
        return replace(
            result, decision="ambiguous",
            reason=f"{text}, and no town, ZIP or street agrees: {result.reason}",
            # Not a term of the score: the rule that kept the score from deciding.
            evidence=(*result.evidence, Evidence(rule, 1.0, 0.0)),
        )

    def readings(self, query: NormalizedName) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Reading, ...]]:
        """(the name and its aliases, loose readings, every reading that is scored)."""
        queries = (query.key, *query.aliases)
        loose = tuple(dict.fromkeys(r for text in queries for r in loose_keys(text) if r not in queries))
        trimmed = tuple(
            dict.fromkeys(r for text in queries for r in descriptor_readings(text) if r not in queries)
        )
        scored = (*(Reading(text, False) for text in queries), *(Reading(text, True) for text in trimmed))
        return queries, loose, scored

    def candidates(self, query: NormalizedName, place: QueryPlace) -> list[Candidate]:
        """Every supplier scored for this payee, best first (used by calibration)."""
        return [candidate for candidate, _ in _in_order(_ranked(self._scored_groups(query, place)))]

    def _scored_groups(self, query: NormalizedName, place: QueryPlace) -> list[_Scored]:
        """The holders of every candidate name in groups that share one feature vector, in the
        order names, groups and holders are met (a supplier holding several of the names is in
        a group of each)."""
        queries, loose, scored = self.readings(query)
        trimmed = tuple(reading.text for reading in scored if reading.descriptor_dropped)
        location = place.location
        truncation_possible = len(query.display) >= CUT_NAME_MIN_CHARS
        exact_names = self._exact_names(queries)
        names = exact_names | self._exact_names(loose) | self._respelt_names(queries + loose)
        seen = _SeenBy(location)
        # An exact name where the payee is settles it; otherwise look for similar names too.
        if not any(self._placed_by(name, seen) for name in names):
            names.update(self._similar_names(queries + loose, truncation_possible))
        names |= self._exact_names(trimmed)
        loose_compacts = {reading.replace(" ", "") for reading in loose}
        exact_somewhere = bool(exact_names)
        payee_forms = PayeeForms.of(query.legal_suffixes)
        name_weights = self.weights[:HOLDER_START]
        holder_weights = self.weights[HOLDER_START:PLACE_START]
        place_weights = self.weights[PLACE_START:TAIL_START]
        tail_weights = self.weights[TAIL_START:]
        information = min(self._information(query.tokens), 40.0) / 10.0
        query_tail = (information, float(F.is_short_name(query.key)), float(F.ends_in_joiner(query.tokens)))
        query_utility = F.dot((tail_weights[0], *tail_weights[3:]), query_tail)
        # ... and chapters their parent's other names: compare each once.
        agreements: dict[tuple[tuple[str, ...], str], bool] = {}

        def agrees(texts: tuple[str, ...], name: str) -> bool:
            if (texts, name) not in agreements:
                agreements[texts, name] = any(_names_agree(text, name, truncation_possible) for text in texts)
            return agreements[texts, name]

        found: list[_Scored] = []
        for name_key in sorted(names):
            reading, name_features = max(
                (
                    # A trimmed reading is the payee's whole name, not a cut one.
                    (reading, self._name_features(
                        reading.text, name_key, truncation_possible and not reading.descriptor_dropped
                    ))
                    for reading in scored
                ),
                key=lambda pair: (
                    pair[1].exact, pair[1].near_exact, not pair[0].descriptor_dropped, pair[1].similarity
                ),
            )
            if not name_features.near_exact and name_key.replace(" ", "") in loose_compacts:
                # Scored on what the payee wrote, but known to be the same name but for a slip.
                name_features = dataclasses.replace(name_features, near_exact=True)
            other_texts = tuple(other for other in queries if other != reading.text)
            per_holder = bool(other_texts or place.street)
            holders = self.name_suppliers[name_key]
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
                float(name_features.real_word_edit),
                float(name_features.invented_word_edit),
                float(name_features.affiliated_body),
                float(reading.descriptor_dropped),
                name_features.words_substituted,
                name_features.payee_words_unmatched,
                float(name_features.word_swapped),
            )
            # Per holder only the holder's features, the place and the namesake term vary: the
            # rest of the utility is summed once per name (chapters have thousands of holders).
            name_utility = F.dot(name_weights, name_part) + query_utility
            # How common the name is in the world: the name's own words, not the payee's typos.
            tokens = name_key.split()
            common = F.NameCommonness(commonness(tokens), commonness(tokens, US_STATE_NAME_WORDS))
            # Namesakes (a chapter name has thousands) differ only in their place, their kind of
            # body and whether the name is their own: group them by what of that this payee can
            # tell apart, score each group once and share its feature vector.
            groups: dict[_HolderGroup, list[str]] = {}
            firsts: dict[_HolderGroup, Location] = {}  # a place of each group
            if per_holder or len(holders) < MANY_HOLDERS:
                entries = self.entries
                for supplier_id in holders:
                    entry = entries[supplier_id]
                    if per_holder:
                        both_names = bool(other_texts) and any(
                            agrees(other_texts, other) for other in entry.names if other != name_key
                        )
                        street = street_agreement(place.street, entry.street)
                    else:  # neither a second name nor a street to compare: the same for every holder
                        both_names, street = False, "unknown"
                    key = (seen[entry.location], entry.kind, entry.names[0] == name_key, both_names, street)
                    members = groups.get(key)
                    if members is None:
                        groups[key] = members = []
                        firsts[key] = entry.location
                    members.append(supplier_id)
            else:  # the same holders gathered once: no holder differs but by its place
                for (_, kind, own), places in self._holder_places(name_key).items():
                    for holder_place, holder_ids in places.alike(location):
                        key = (seen[holder_place], kind, own, False, "unknown")
                        members = groups.get(key)
                        if members is None:
                            groups[key] = members = []
                            firsts[key] = holder_place
                        members.extend(holder_ids)
            scored_groups = []
            holder_parts: dict[HolderKind, tuple[float, ...]] = {}
            own_holders = 0
            in_state: list[str] = []
            for key, members in groups.items():
                _, kind, own, _, street = key
                values = F.place_features(place, firsts[key], kind, common.plain, street)
                scored_groups.append((key, members, values))
                if own:
                    own_holders += len(members)
                    if values[_STATE_AGREES] and not values[_CITY_CONFLICTS]:
                        in_state.extend(members)
            # Suppliers that carry the name as their own, not as an alt name (a DBA or parent).
            namesakes = math.log(max(1, own_holders))
            # The only namesake in the payee's state (with no city against it) is pinned by the state.
            alone_in_state = in_state[0] if len(in_state) == 1 else None
            for (seen_place, kind, own, both_names, _), members, place_values in scored_groups:
                # Many namesakes mean more unindexed ones too, unless the street, city or ZIP pins
                # this one; pinned by the state alone, the namesakes count by a weight of their own
                # (an unindexed namesake may share the state: the fit says how often).
                # The one pinned by its state is a group of its own.
                placed = place_values[_CITY_AGREES] or place_values[_POSTAL_AGREES] or place_values[_STREET_AGREES]
                state_pinned = not placed and members[0] == alone_in_state
                unplaced = 0.0 if placed or state_pinned else namesakes
                pinned_namesakes = namesakes if state_pinned else 0.0
                conflicts = holder_parts.get(kind)
                if conflicts is None:
                    conflicts = holder_parts[kind] = F.holder_features(payee_forms, kind, common)
                # "X DBA Y" naming both of a supplier's names: its other name is the payee's other.
                holder_part = (0.0 if own else 1.0, float(both_names), *conflicts)
                utility = (
                    name_utility + F.dot(holder_weights, holder_part)
                    + F.dot(place_weights, place_values) + tail_weights[1] * unplaced
                    + tail_weights[2] * pinned_namesakes
                )
                features = (
                    *name_part, *holder_part, *place_values,
                    query_tail[0], unplaced, pinned_namesakes, *query_tail[1:],
                )
                found.append(_Scored(name_key, seen_place, features, utility, members))
        return found

    def _exact_names(self, queries: Iterable[str]) -> set[str]:
        names: set[str] = set()
        for text in queries:
            if text in self.name_suppliers:
                names.add(text)
            names.update(self.compact_names.get(text.replace(" ", ""), ()))
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
                found.update(" ".join(v) for v in variants if " ".join(v) in self.name_suppliers)
        found.difference_update(queries)
        return found

    def _placed_by(self, name: str, seen: _SeenBy) -> bool:
        """Whether a holder of ``name`` is where the payee is (or the payee gives no place): its
        ZIP agrees, or, in no other state, its town does, or its state does and no town is against."""
        location = seen.location
        if not location:
            return True
        holders = self.name_suppliers[name]
        places: Iterable[Location] = (
            (self.entries[supplier_id].location for supplier_id in holders) if len(holders) < MANY_HOLDERS
            else chain.from_iterable(places.by_place for places in self._holder_places(name).values())
        )
        for other in places:
            if location.postal_code and other.postal_code == location.postal_code:
                return True
            if location.state and other.state and other.state != location.state:
                continue  # the states conflict: no city agrees then, and the ZIP did not
            city_agrees = seen.city_agreement(other.city)
            if city_agrees or (location.state and other.state and city_agrees is None):
                return True
        return False

    def _holder_places(self, name: str) -> _HolderPlaces:
        """The holders of a name of many (``MANY_HOLDERS``) by state, kind of body and whether
        the name is their own (``_Places``); kept until the name's holders change."""
        gathered = self._places.get(name)
        if gathered is None:
            gathered = self._places[name] = {}
            for supplier_id in self.name_suppliers[name]:
                entry = self.entries[supplier_id]
                place = entry.location
                places = gathered.get(key := (place.state, entry.kind, entry.names[0] == name))
                if places is None:
                    places = gathered[key] = _Places(_Bucket(place, []), {}, {})
                places.everyone.members.append(supplier_id)
                initial = place.city[:1]
                if initial not in places.by_initial:
                    places.by_initial[initial] = (_Bucket(place, []), {})
                same_initial, towns = places.by_initial[initial]
                same_initial.members.append(supplier_id)
                towns.setdefault(place.city, _Bucket(place, [])).members.append(supplier_id)
                places.by_place.setdefault(place, []).append(supplier_id)
        return gathered

    def _spellings(self, token: str) -> list[str]:
        """The token if indexed (plus far commoner spellings one edit away when it is rare), else
        indexed tokens one edit away, commonest first: among words one slip away, the payee most
        likely meant the one most often written."""
        postings = self.postings.get(token)
        if len(token) < MIN_TYPO_TOKEN:
            return [token] if postings is not None else []
        if postings is not None and len(postings) > RARE_SPELLING_NAMES:
            return [token]
        found = set(self.deletion_index.get(token, ()))  # the payee dropped a character
        for variant in deletions(token):
            if variant in self.postings:  # the payee added a character
                found.add(variant)
            found.update(self.deletion_index.get(variant, ()))  # substituted or swapped one
        if postings is None:
            return sorted(found, key=lambda spelling: (-len(self.postings[spelling]), spelling))[:MAX_CORRECTIONS]
        # A rare indexed token: itself first, then much more common spellings one edit away.
        common = [
            spelling for spelling in found
            if len(self.postings[spelling]) >= COMMON_SPELLING_FACTOR * len(postings)
        ]
        common.sort(key=lambda spelling: (-len(self.postings[spelling]), spelling))
        return [token, *common[: MAX_CORRECTIONS - 1]]

    def _similar_names(self, queries: Iterable[str], truncation_possible: bool) -> set[str]:
        """The blocked names closest to each query by up to three rankings: WRatio (word order,
        partial matches), token-sort ratio (which WRatio's partial matching lets short names
        crowd out) and, for a name that may be cut, the ratio to each name's prefix of the
        query's length."""
        similar: set[str] = set()
        for text in queries:
            anchors: list[tuple[set[str] | _Union, str | None]] = []  # names, and the one token they are of
            for token in dict.fromkeys(text.split()):
                spellings = self._spellings(token)
                if len(spellings) == 1:
                    anchors.append((self.postings[spellings[0]], spellings[0]))
                elif spellings:
                    anchors.append((_Union([self.postings[spelling] for spelling in spellings]), None))
            anchors.sort(key=lambda anchor: len(anchor[0]))
            if len(anchors) == 1 and anchors[0][1] is not None and len(anchors[0][0]) > MAX_SCORED_NAMES:
                # One common token alone ("SALAMONE FOUNDATION", SALAMONE unknown): its names
                # nearest in length, from the postings kept sorted by length.
                blocked = _nearest_in_length(self._by_length(anchors[0][1]), len(text), MAX_SCORED_NAMES)
            else:
                blocked = _block([names for names, _ in anchors[:MAX_ANCHORS]], text)
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

    def _by_length(self, token: str) -> list[str]:
        """The names carrying ``token``, by length and then name; kept until the token's names change."""
        names = self._length_sorted.get(token)
        if names is None:
            names = self._length_sorted[token] = sorted(self.postings[token], key=_length_and_name)
        return names

    def _idf(self, token: str) -> float:
        names_with_token = len(self.postings.get(token, ()))
        return math.log((len(self.name_suppliers) + 1) / (names_with_token + 1)) + 1.0

    def _information(self, tokens: Iterable[str]) -> float:
        return sum(self._idf(token) for token in tokens)

    def _name_features(self, query: str, name: str, truncation_possible: bool) -> _NameFeatures:
        if query == name or query.replace(" ", "") == name.replace(" ", ""):
            # Zero slips are within two: exact names are near-exact too, and score above them.
            return _EXACT_NAME
        similarity = max(fuzz.ratio(query, name), fuzz.token_sort_ratio(query, name)) / 100.0
        truncated = False
        cut_share = 0.0
        name_tokens = name.split()
        if truncation_possible:
            cut_similarity = F.prefix_ratio(query, name) / 100.0
            if cut_similarity > similarity:
                similarity, truncated = cut_similarity, True
                cut_share = 1.0 - len(query) / len(name)
                # Only the part of the name the payee system kept can be compared.
                name_tokens = name[: len(query)].split()
        query_tokens = query.split()
        compared_query = query_tokens[:-1] if truncated else query_tokens  # the cut word may be partial
        compared_name = name_tokens[:-1] if truncated else name_tokens
        query_coverage, unmatched = self._coverage(query_tokens, name_tokens, truncated)
        name_coverage, name_unmatched = self._coverage(name_tokens, query_tokens, truncated)
        return _NameFeatures(
            similarity, query_coverage, name_coverage, exact=False,
            near_exact=F.near_exact(query, name, truncation_possible),
            truncated=truncated,
            cut_share=cut_share,
            real_word_edit=F.real_word_edit(compared_query, compared_name),
            invented_word_edit=F.invented_word_edit(compared_query, compared_name),
            affiliated_body=F.affiliated_body(compared_query, compared_name),
            payee_words_unmatched=unmatched,
            name_words_unmatched=name_unmatched,
        )

    def _coverage(self, tokens: list[str], other: list[str], truncated: bool) -> tuple[float, float]:
        """IDF-weighted shares of ``tokens`` found in ``other`` (typos, abbreviations, cut last
        token) and of those with no counterpart there at all, descriptor words aside. A word of
        ``other`` found as itself stands for nothing else: FIRE of "FAIRLEA VOLUNTEER FIRE" is
        no abbreviation of FAIRLEA when the payee has FIRE too."""
        total = found = unmatched = 0.0
        present = Counter(other)  # each word of ``other`` found as itself once: WALLA WALLA is not WALLA
        unused = list((present - Counter(tokens)).elements())
        last = other[-1] if other else None
        for position, token in enumerate(tokens):
            weight = self._idf(token)
            total += weight
            if present[token] > 0:  # the common case, full credit without comparing every token
                present[token] -= 1
                found += weight
                continue
            cut = truncated and position == len(tokens) - 1
            credit = max(
                (
                    F.token_credit(token, candidate, cut or (truncated and candidate == last))
                    for candidate in unused
                ),
                default=0.0,
            )
            found += weight * credit
            # A descriptor word ("ACME WIRELESS") says which account is paid, not who.
            unmatched += weight * (credit == 0.0 and token not in DESCRIPTOR_TAIL_WORDS)
        return (found / total, unmatched / total) if total else (0.0, 0.0)

    def _decide(self, groups: list[_Scored], place: QueryPlace) -> MatchResult:
        """The decision over ranked groups (``_ranked``): as if over every supplier one by one,
        best first, but namesakes that share a feature vector are weighed once."""
        # Softmax with a "none of these" option at utility 0, shifted for numerical safety.
        shift = max(groups[0].utility, 0.0)
        weights = [math.exp(group.utility - shift) for group in groups]
        total = math.exp(-shift) + _sum_over_members(weights, groups)
        probabilities = [weight / total for weight in weights]
        ordered = _in_order(groups)
        listed = list(islice(ordered, LISTED_CANDIDATES))
        # Namesakes listed share a feature vector, and the decision explains the best again.
        explanations: dict[tuple[float, ...], tuple[Evidence, ...]] = {}

        def explain(features: tuple[float, ...]) -> tuple[Evidence, ...]:
            if features not in explanations:
                explanations[features] = F.evidence(self.weights, features)
            return explanations[features]

        views = tuple(self._view(candidate, probabilities[position], explain) for candidate, position in listed)
        top, top_position = listed[0]
        score, top_group = probabilities[top_position], groups[top_position]
        # One organisation registered several times (same name, place and kind) is one payee.
        top_entry = self.entries[top.supplier_id]
        group = [
            (Candidate(supplier_id, other.name_key, other.features, other.utility), probability)
            for other, probability in zip(groups, probabilities, strict=True)
            # Same place, same place as the payee sees it: thousands of chapters share the name, few the place.
            if other.name_key == top.name_key and other.seen == top_group.seen
            for supplier_id in other.members
            if (entry := self.entries[supplier_id]).location == top_entry.location
            and self._same_registration(entry, top_entry)
        ]
        if len(group) > 1:
            score = math.fsum(probability for _, probability in group)
            top = min((candidate for candidate, _ in group), key=lambda candidate: candidate.supplier_id)
        grouped = {member.supplier_id for member, _ in group}
        runner = next(
            (
                (candidate, probabilities[position])
                for candidate, position in chain(listed, ordered)
                if candidate.supplier_id not in grouped
            ),
            None,
        )
        runner_up = self._describe(*runner) if runner else None
        supplier = self.entries[top.supplier_id].supplier
        match_type: MatchType = "exact" if top.features[_EXACT] else "fuzzy"
        margin = score - (runner[1] if runner else 0.0)
        explained = explain(top.features)
        registered = ""
        if len(group) > 1:
            # The group counts as one payee: its copies' probabilities add up, as if its utility
            # were log(sum of exp(utility)) — the extra term makes the explanation sum to the score.
            copies = math.log(math.fsum(math.exp(member.utility - top.utility) for member, _ in group))
            explained += (Evidence("registered_copies", float(len(group)), round(copies, 4)),)
            registered = f"; one organisation registered {len(group)} times, the lowest id stands for it"
        if score >= self.match_threshold and margin >= self.ambiguity_margin:
            reason = F.why(top.features, place) + registered
            return _result(supplier, score, match_type, "matched", runner_up, reason, explained, views)
        namesakes = [position for position, other in enumerate(groups) if other.name_key == top.name_key]
        shared = _sum_over_members([probabilities[i] for i in namesakes], [groups[i] for i in namesakes])
        # Copies of one registration are one holder.
        holders = sum(len(groups[i].members) for i in namesakes) - max(len(group) - 1, 0)
        if holders > 1 and shared >= self.review_floor:
            return _result(
                supplier, score, match_type, "ambiguous", runner_up,
                f"{holders} suppliers share this name and the location does not decide",
                explained, views,
            )
        if score >= self.review_floor:  # unsure: a reviewer decides, never a guess
            return _result(
                supplier, score, match_type, "ambiguous", runner_up,
                f"best candidate {score:.2f} is below the {self.match_threshold:.2f} threshold: "
                f"{F.why(top.features, place)}{registered}",
                explained, views,
            )
        on_the_list = 1.0 - math.exp(-shift) / total
        if on_the_list >= self.review_floor:
            # Likely one of them, though no one alone: "none" would say it is no listed supplier.
            weighed = sum(len(other.members) for other in groups)
            return _result(
                supplier, score, match_type, "ambiguous", runner_up,
                f"{weighed} candidates are together {on_the_list:.2f} likely, none alone is: "
                f"{F.why(top.features, place)}",
                explained, views,
            )
        return _no_match(
            score,
            self._describe(top, score),
            f"best candidate {score:.2f} is below the {self.match_threshold:.2f} threshold",
            explained,
            views,
        )

    @staticmethod
    def _same_registration(entry: Entry, other: Entry) -> bool:
        """Registered again, not a namesake: same place, kind of body, country, address and second
        name (a manufacturer's several registry entries at one office; never two chapters, nor two
        firms of one name whose registry rows give no town at all). A company's rows in one town
        and ZIP are one office however its street is spelt ("One Microsoft Way", "1 Microsoft Way")."""
        a, b = entry.supplier, other.supplier
        return (
            entry.location == other.location
            and entry.kind.category == other.kind.category
            and entry.kind.country == other.kind.country
            and (
                a.address.upper() == b.address.upper()
                or (entry.kind.category == "business" and bool(entry.location.postal_code))
            )
            and a.alt_name.upper() == b.alt_name.upper()
        )

    def _describe(self, candidate: Candidate, probability: float) -> tuple[str, str, float]:
        name = self.entries[candidate.supplier_id].supplier.name
        return candidate.supplier_id, name, round(probability, 4)

    def _view(
        self, candidate: Candidate, probability: float, explain: Callable[[tuple[float, ...]], tuple[Evidence, ...]]
    ) -> CandidateView:
        entry = self.entries[candidate.supplier_id]
        supplier = entry.supplier
        return CandidateView(
            supplier_id=supplier.supplier_id,
            supplier_name=supplier.name,
            probability=round(probability, 4),
            # A registry row's town and state come from its address (``registered_place``).
            city=supplier.city or entry.location.city,
            state=supplier.state or entry.location.state,
            evidence=explain(candidate.features),
        )


class _SeenBy(dict[Location, SeenPlace]):
    """What the features can tell of a supplier's place from this payee's, per place of the
    holders: its state (which also meets the source's default state), and whether its city and
    its ZIP agree with the payee's where both give one (None where either does not)."""

    def __init__(self, location: Location) -> None:
        super().__init__()
        self.location = location
        self.city_agrees: dict[str, bool] = {}  # per city of the holders: thousands of chapters, fewer towns

    def __missing__(self, other: Location) -> SeenPlace:
        location = self.location
        postal = location.postal_code == other.postal_code if location.postal_code and other.postal_code else None
        seen = self[other] = (other.state, self.city_agreement(other.city), postal)
        return seen

    def city_agreement(self, city: str) -> bool | None:
        """Whether a holder's city agrees with the payee's (None when either gives none)."""
        if not (self.location.city and city):
            return None
        agrees = self.city_agrees.get(city)
        if agrees is None:
            agrees = self.city_agrees[city] = F.places_agree(self.location.city, city)
        return agrees


def _ranked(groups: list[_Scored]) -> list[_Scored]:
    """Groups best first, each supplier in one of them only: the one where it scores best (the
    first of equals, in the order met) when it holds several of the names."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for group in groups:
        if seen.isdisjoint(group.members):  # the common case: a chapter's thousands of holders
            seen.update(group.members)
        else:
            members = set(group.members)
            repeated |= seen & members
            seen |= members
    if repeated:
        best: dict[str, int] = {}
        for position, group in enumerate(groups):
            for supplier_id in repeated.intersection(group.members):
                known = best.get(supplier_id)
                if known is None or group.utility > groups[known].utility:
                    best[supplier_id] = position
        groups = [
            group._replace(members=kept)
            for position, group in enumerate(groups)
            if (kept := [member for member in group.members if best.get(member, position) == position])
        ]
    return sorted(groups, key=_BY_UTILITY, reverse=True)


def _in_order(groups: list[_Scored]) -> Iterator[tuple[Candidate, int]]:
    """Every member of ranked groups as a candidate, best first and ties by id, with the
    position of its group; lazily, since a decision looks at the first few."""
    start = 0
    while start < len(groups):
        utility = groups[start].utility
        end = start + 1
        while end < len(groups) and groups[end].utility == utility:
            end += 1
        # A heap, not a sort: thousands of namesakes may tie, and a decision reads the first few.
        tied = [(supplier_id, position) for position in range(start, end) for supplier_id in groups[position].members]
        heapq.heapify(tied)
        while tied:
            supplier_id, position = heapq.heappop(tied)
            group = groups[position]
            yield Candidate(supplier_id, group.name_key, group.features, utility), position
        start = end


def _sum_over_members(values: Iterable[float], groups: Iterable[_Scored]) -> float:
    """The exact sum of one value per member of each group, as if summed member by member."""
    return math.fsum(chain.from_iterable(repeat(value, len(group.members)) for value, group in zip(values, groups, strict=True)))


def _names_agree(text: str, name: str, truncation_possible: bool) -> bool:
    """Whether ``text`` is ``name`` or, when it may be cut, the beginning of it."""
    return fuzz.token_sort_ratio(text, name) >= BOTH_NAMES_MIN_SIMILARITY or (
        truncation_possible and F.prefix_ratio(text, name) >= BOTH_NAMES_MIN_SIMILARITY
    )


class _Union:
    """The names of a token's several spellings (FOUNDAION: FOUNDATION, FOUNDATIONS…) as a set
    for ``_block``, without copying the largest postings (tens of thousands of names): the size,
    what it shares with another set, the names."""

    def __init__(self, postings: list[set[str]]) -> None:
        self.largest = max(postings, key=len)  # read, never changed: the postings themselves
        self.rest = set().union(*(names for names in postings if names is not self.largest)) - self.largest

    def __len__(self) -> int:
        return len(self.largest) + len(self.rest)

    def __iter__(self) -> Iterator[str]:
        return chain(self.largest, self.rest)

    def __and__(self, other: set[str] | _Union) -> set[str]:
        return (self.largest & other) | (self.rest & other)

    __rand__ = __and__

    def __ror__(self, other: set[str]) -> set[str]:
        return other | self.largest | self.rest


def _block(anchors: list[set[str] | _Union], query: str) -> set[str] | _Union:
    """Names sharing at least two of the rarest query tokens, or one rare token.

    Intersections run in C over the smaller set, so common tokens cost little; a rare token
    alone still brings its names so that one misspelt or missing word does not lose a match.
    """
    if not anchors:
        return set()
    if len(anchors) == 1:
        blocked = anchors[0]  # read, never changed here or by the caller: it may be the postings
    else:
        blocked = set()
        for anchor in anchors:
            if len(anchor) <= RARE_TOKEN_NAMES:
                blocked |= anchor
        # Cheapest pairs first (the anchors are sorted by size): once the names exceed the
        # bound, pairs are too generic and triples decide, unless there are none.
        pairs = [(i, j) for i in range(len(anchors)) for j in range(i + 1, len(anchors))]
        shared: dict[tuple[int, int], set[str]] = {}

        def pair(i: int, j: int) -> set[str]:
            if (i, j) not in shared:
                shared[i, j] = anchors[i] & anchors[j]
            return shared[i, j]

        unioned = 0
        while unioned < len(pairs) and not (len(blocked) > MAX_SCORED_NAMES and len(anchors) > 2):
            blocked |= pair(*pairs[unioned])
            unioned += 1
        if len(blocked) > MAX_SCORED_NAMES and len(anchors) > 2:
            # Too generic for pairs: require three shared tokens.
            triples: set[str] = set()
            for i, j in pairs:
                for third in anchors[j + 1 :]:
                    triples |= pair(i, j) & third
            if triples:
                blocked = triples
            else:
                for i, j in pairs[unioned:]:
                    blocked |= pair(i, j)
    if len(blocked) > MAX_SCORED_NAMES:
        # Still generic: names closest in length share the most with a query made of common words.
        blocked = _closest_in_length(blocked, len(query), MAX_SCORED_NAMES)
    return blocked


def _length_window(sizes: Callable[[int], int], length: int, wanted: int) -> tuple[int, int]:
    """The narrowest lengths ``length ± d`` that hold ``wanted`` names (``sizes``: names per length)."""
    within, distance = sizes(length), 0
    while within < wanted:
        distance += 1
        within += sizes(length - distance) + sizes(length + distance)
    return length - distance, length + distance


def _nearest_in_length(by_length: list[str], length: int, count: int) -> set[str]:
    """``_closest_in_length`` of names sorted by length and then name: found by bisection."""
    def start(size: int) -> int:
        return bisect.bisect_left(by_length, size, key=len)

    wanted = min(count, len(by_length))
    low, high = _length_window(lambda size: start(size + 1) - start(size), length, wanted)
    closest = by_length[start(low + 1) : start(high)]
    edges = [by_length[start(low) : start(low + 1)]] if low == high else [
        by_length[start(low) : start(low + 1)], by_length[start(high) : start(high + 1)]]
    closest.extend(islice(heapq.merge(*edges), wanted - len(closest)))
    return set(closest)


def _closest_in_length(names: set[str], length: int, count: int) -> set[str]:
    """The ``count`` names nearest ``length`` characters, ties by name: the names nearer than
    some distance, then the first by name at that distance (tens of thousands of names carry
    OF or COUNTY: their lengths are counted in C, and only those at the edge are compared)."""
    sizes = Counter(map(len, names))
    wanted = min(count, len(names))
    low, high = _length_window(sizes.__getitem__, length, wanted)
    near = [name for name in names if low <= len(name) <= high]  # the one pass over all names
    closest = [name for name in near if low < len(name) < high]
    edge = [name for name in near if len(name) in (low, high)]
    closest.extend(heapq.nsmallest(wanted - len(closest), edge))
    return set(closest)


def _result(
    supplier: Supplier,
    score: float,
    match_type: MatchType,
    decision: Decision,
    runner_up: tuple[str, str, float] | None,
    reason: str,
    explained: tuple[Evidence, ...],
    views: tuple[CandidateView, ...],
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
        evidence=explained,
        candidates=views,
    )


def _no_match(
    score: float,
    nearest: tuple[str, str, float] | None,
    reason: str,
    explained: tuple[Evidence, ...] = (),
    views: tuple[CandidateView, ...] = (),
) -> MatchResult:
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
        evidence=explained,
        candidates=views,
    )
