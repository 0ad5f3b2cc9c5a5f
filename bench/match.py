"""Matching benchmark and calibration, closed world and open world side by side.

    python bench/match.py                 # dev queries (closed world) and the open world, speed, snapshot
    python bench/match.py --calibrate     # refit domain.matching.features.WEIGHTS on the open world

The benchmark reads ``../shared/data`` (relative to the repository root) unless told otherwise.

Closed world: every dev query is a noisy copy of a name in the index (or marked absent).
Open world: the index holds half of the supplier list (nonprofits and government bodies of
half of the states, the manufacturers by half of the names) and the payees are drawn as a
payment file has them: most in no list (the other half's suppliers, many of them namesakes
of indexed ones; persons; made-up businesses; an indexed name with an affiliated body's words,
a real word changed or one word in place of another; a foreign manufacturer's name with a US
form; a company name that is an acronym or everyday words, as the many holders outside any
list carry it), the rest indexed suppliers written noisily (typos, truncation, legal forms, dropped and swapped words,
abbreviations, descriptor tails), with and without place. Some carry address lines (most of
those with a ZIP, few with a state alone): a supplier's payee its registered street as typed, or
now and then a remit-to box or another office; a namesake its own street. Every match on an
absent payee is a false positive.

Calibration fits the softmax weights by maximum likelihood on one draw of the open world and
reports them on another; it never looks at the dev queries or at real payee files. Evidence
that can only count one way (a conflict, an agreement) is held at 0 when the fit gives it the
other sign. Paste the printed tuple into ``domain/matching/features.py``.
"""

from __future__ import annotations

import argparse
import csv
import gc
import math
import random
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import names as person_names  # noqa: E402
from rapidfuzz import fuzz, process, utils  # noqa: E402
from scourgify.address_constants import DIRECTIONAL_REPLACEMENTS, STREET_TYPE_ABBREVIATIONS  # noqa: E402

from domain.address import registered_place, street_key  # noqa: E402
from domain.matching import snapshot as snapshot_io  # noqa: E402
from domain.matching import (  # noqa: E402
    FEATURES,
    WEIGHTS,
    Location,
    MatchResult,
    QueryPlace,
    SupplierIndex,
    freeze_built_index,
    usable_alt_name,
)
from domain.matching.features import HolderKind  # noqa: E402
from domain.matching.world import JOINERS, is_real_word  # noqa: E402
from domain.normalize import ABBREVIATIONS, loose_keys, normalize_name  # noqa: E402
from domain.suppliers import SUPPLIER_FIELDS, RowError, Supplier, read_suppliers_csv  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
BRUTE_FORCE_CUTOFF = 90.0
# Where the payees of a US payment file are, unless the record says otherwise (the product default).
DEFAULT_COUNTRY = "US"


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MB, from /proc/self/status."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def load_suppliers(path: Path) -> list[Supplier]:
    return [row for row in read_suppliers_csv(path) if not isinstance(row, RowError)]


def build_index(suppliers: list[Supplier]) -> tuple[SupplierIndex, float]:
    started = time.perf_counter()
    index = SupplierIndex()
    index.upsert_many(suppliers)
    elapsed = time.perf_counter() - started
    freeze_built_index()  # as the worker does once its index is ready
    return index, elapsed


@dataclass
class Outcome:
    """Counts over queries with known truth (truth None = not in the index)."""

    emitted: int = 0
    emitted_right: int = 0
    positives: int = 0
    found: int = 0
    negatives: int = 0
    abstained: int = 0

    def add(self, predicted: str | None, truth: str | None) -> None:
        if predicted is not None:
            self.emitted += 1
            self.emitted_right += predicted == truth
        if truth:
            self.positives += 1
            self.found += predicted == truth
        else:
            self.negatives += 1
            self.abstained += predicted is None

    @property
    def precision(self) -> float:
        return self.emitted_right / self.emitted if self.emitted else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.positives if self.positives else 1.0

    @property
    def abstention(self) -> float:
        return self.abstained / self.negatives if self.negatives else 1.0


def read_queries(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def run_index(
    index: SupplierIndex, queries: list[dict[str, str]]
) -> tuple[Outcome, list[float], list[tuple[str, str | None]]]:
    """Outcome over ``queries``, and per query its latency and (decision, matched supplier)."""
    outcome, latencies, decisions = Outcome(), [], []
    for row in queries:
        started = time.perf_counter()
        result = index.match(
            row["name"], city=row["city"] or None, state=row["state"] or None, default_country=DEFAULT_COUNTRY
        )
        latencies.append(time.perf_counter() - started)
        predicted = result.supplier_id if result.decision == "matched" else None
        decisions.append((result.decision, predicted))
        outcome.add(predicted, row["true_supplier_id"] or None)
    return outcome, latencies, decisions


def indistinguishable(suppliers: list[Supplier], queries: list[dict[str, str]]) -> list[bool]:
    """Per query: whether its true supplier shares its name with another supplier that also
    agrees on every place the query gives (city, state) and, when the payee names a second name
    ("<chapter> DBA <parent>"), on the alt name too. No matcher can tell which one the payee is;
    the right outcome is review, so recall is also reported without them."""
    by_id = {supplier.supplier_id: supplier for supplier in suppliers}
    namesakes: dict[str, list[Supplier]] = {}
    for supplier in suppliers:
        namesakes.setdefault(normalize_name(supplier.name).key, []).append(supplier)
    alt_keys: dict[str, str] = {}

    def alt_key(supplier: Supplier) -> str:
        """The alt name as the matcher uses it ('' when it does not)."""
        if supplier.supplier_id not in alt_keys:
            usable = supplier.alt_name and usable_alt_name(supplier.alt_name)
            alt_keys[supplier.supplier_id] = normalize_name(supplier.alt_name).key if usable else ""
        return alt_keys[supplier.supplier_id]

    flags = []
    for row in queries:
        truth = by_id.get(row["true_supplier_id"])
        if truth is None:
            flags.append(False)
            continue
        truth_place = Location.of(truth.city, truth.state, None)
        names_both = bool(normalize_name(row["name"]).aliases)
        flags.append(any(
            other.supplier_id != truth.supplier_id
            and (not row["city"] or Location.of(other.city, None, None).city == truth_place.city)
            and (not row["state"] or Location.of(None, other.state, None).state == truth_place.state)
            and (not names_both or alt_key(other) == alt_key(truth))
            for other in namesakes[normalize_name(truth.name).key]
        ))
    return flags


def run_brute_force(suppliers: list[Supplier], queries: list[dict[str, str]]) -> tuple[Outcome, list[float]]:
    choices = [utils.default_process(supplier.name) for supplier in suppliers]
    outcome, latencies = Outcome(), []
    for row in queries:
        started = time.perf_counter()
        best = process.extractOne(
            utils.default_process(row["name"]), choices, scorer=fuzz.WRatio, processor=None,
            score_cutoff=BRUTE_FORCE_CUTOFF,
        )
        latencies.append(time.perf_counter() - started)
        outcome.add(suppliers[best[2]].supplier_id if best else None, row["true_supplier_id"] or None)
    return outcome, latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def benchmark(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    suppliers = load_suppliers(args.suppliers)
    read_s = time.perf_counter() - started
    index, build_s = build_index(suppliers)
    rss, peak = rss_mb()
    print(f"suppliers: {len(suppliers):,} read in {read_s:.1f} s; index built in {build_s:.1f} s; "
          f"RSS {rss:,.0f} MB (peak {peak:,.0f} MB); version {index.index_version}")

    with tempfile.TemporaryDirectory() as directory:
        snapshot = Path(directory) / "index.bin"
        started = time.perf_counter()
        snapshot_io.save(index, snapshot)
        save_s = time.perf_counter() - started
        started = time.perf_counter()
        loaded = snapshot_io.load(snapshot)
        load_s = time.perf_counter() - started
        size_mb = snapshot.stat().st_size / 1e6
    assert loaded.index_version == index.index_version and len(loaded) == len(index)
    del loaded
    gc.collect()
    print(f"snapshot: {size_mb:.0f} MB, save {save_s:.1f} s, load {load_s:.1f} s")

    queries = read_queries(args.queries)
    outcome, latencies, decisions = run_index(index, queries)
    hidden = indistinguishable(suppliers, queries)
    sample = random.Random(args.seed).sample(queries, min(args.brute_force_sample, len(queries)))
    brute, brute_latencies = run_brute_force(suppliers, sample)
    sampled, _, _ = run_index(index, sample)

    index_qps = len(latencies) / sum(latencies)
    brute_qps = len(brute_latencies) / sum(brute_latencies)
    print(f"\ndev queries: {len(queries):,} ({outcome.positives:,} in the index, {outcome.negatives:,} not); "
          f"decisions {dict(Counter(decision for decision, _ in decisions))}")
    print(f"brute force: rapidfuzz extractOne WRatio over all {len(suppliers):,} names, cutoff "
          f"{BRUTE_FORCE_CUTOFF:.0f}, on {len(sample)} sampled queries\n")
    header = (f"{'':<28}{'precision':>10}{'recall':>9}{'abstain':>9}"
              f"{'queries/s':>11}{'p50 ms':>9}{'p99 ms':>9}")
    print(header)
    print("-" * len(header))
    for label, result, times in (
        (f"index, all {len(queries)}", outcome, latencies),
        (f"index, sample {len(sample)}", sampled, None),
        (f"brute force, sample {len(sample)}", brute, brute_latencies),
    ):
        timing = (f"{len(times) / sum(times):>11,.0f}{percentile(times, 0.5) * 1e3:>9.2f}"
                  f"{percentile(times, 0.99) * 1e3:>9.2f}") if times else ""
        print(f"{label:<28}{result.precision:>10.2%}{result.recall:>9.2%}{result.abstention:>9.2%}{timing}")
    print(f"\nspeed-up over brute force: {index_qps / brute_qps:,.0f}x")

    telling = Outcome()
    for row, (_, predicted), flag in zip(queries, decisions, hidden, strict=True):
        if not flag:
            telling.add(predicted, row["true_supplier_id"] or None)
    sent_to_review = sum(
        decision == "ambiguous" for (decision, _), flag in zip(decisions, hidden, strict=True) if flag
    )
    print(f"\n{sum(hidden):,} of {outcome.positives:,} payees in the index ({sum(hidden) / outcome.positives:.1%}) "
          f"share their name and every given place with another supplier: no matcher can tell which "
          f"one is meant; {sent_to_review / max(1, sum(hidden)):.0%} of them went to review as ambiguous.")
    print(f"recall on the other {telling.positives:,}: {telling.recall:.2%}")

    del index
    gc.collect()
    print()
    world_index, examples = open_world(args, suppliers, seed=args.open_world_seed)
    world = open_world_report(world_index, examples, {supplier.supplier_id: supplier for supplier in suppliers})
    print(f"\n{'side by side':<28}{'precision':>10}{'recall':>9}{'abstain':>9}")
    for label, result in (("closed world (dev queries)", outcome), ("open world (synthetic)", world)):
        print(f"{label:<28}{result.precision:>10.2%}{result.recall:>9.2%}{result.abstention:>9.2%}")


# ---------------------------------------------------------------------------- calibration

LEGAL_FORMS = ("INC", "INC.", "INCORPORATED", "CORP", "CORPORATION", "LLC", "L.L.C.", "CO", "COMPANY", "LTD")
CONTRACTIONS = {full: short for short, full in ABBREVIATIONS.items() if len(short) < len(full)}
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    kind = rng.choice(("delete", "insert", "double", "substitute", "transpose"))
    if kind == "delete":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[: i + 1] + word[i:]
    if kind == "insert":
        return word[:i] + rng.choice(LETTERS) + word[i:]
    if kind == "substitute":
        return word[:i] + rng.choice(LETTERS) + word[i + 1 :]
    i = min(i, len(word) - 2)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def contract(word: str) -> str:
    """A made-up abbreviation the way clerks write them: first letter and consonants."""
    return (word[0] + "".join(ch for ch in word[1:] if ch not in "AEIOU"))[:4]


# Legal forms a clerk writes for each kind of supplier: a nonprofit is never an LLC.
CLERK_FORMS = {
    "business": LEGAL_FORMS,
    "nonprofit": ("INC", "INC.", "INCORPORATED"),
    "government": (),
}


def noisy_name(
    name: str, other_names: list[str], rng: random.Random, category: str = "business", dba: bool = True
) -> str:
    """The name as a payment file may have it; ``dba`` adds "X DBA <another name>" sometimes."""
    words = name.upper().split()
    forms = CLERK_FORMS.get(category, LEGAL_FORMS)
    operations = ("typo", "typo", "suffix", "drop", "swap", "abbreviate", "ampersand", "the", "punctuation",
                  "space", *(("dba",) if dba else ()))
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        operation = rng.choice(operations)
        long_words = [i for i, word in enumerate(words) if len(word) >= 4]
        if operation == "typo" and long_words:
            i = rng.choice(long_words)
            words[i] = typo(words[i], rng)
        elif operation == "suffix" and forms:
            if len(words) > 1 and words[-1].strip(".,") in {form.strip(".") for form in LEGAL_FORMS}:
                words.pop()
                if rng.random() < 0.5:
                    words.append(rng.choice(forms))
            else:
                words.append(rng.choice(forms))
        elif operation == "drop" and len(words) > 2:
            words.pop(rng.randrange(1, len(words)))
        elif operation == "swap" and len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        elif operation == "abbreviate" and long_words:
            i = rng.choice(long_words)
            words[i] = CONTRACTIONS.get(words[i]) or contract(words[i])
        elif operation == "ampersand":
            words = ["&" if word == "AND" else "AND" if word == "&" else word for word in words]
        elif operation == "the":
            words = words[1:] if words and words[0] == "THE" else ["THE", *words]
        elif operation == "punctuation" and len(words) > 1:
            i = rng.randrange(len(words) - 1)
            words[i] += rng.choice((",", ".", " -"))
        elif operation == "space" and len(words) > 1:
            # A space lost or shifted by one letter: "MISSION INC" → "MISSIONINC" / "MISSIONI NC".
            i = rng.randrange(len(words) - 1)
            joined, cut = words[i] + words[i + 1], len(words[i]) + rng.choice((-1, 1))
            shifted = rng.random() < 0.5 and 0 < cut < len(joined)
            words[i : i + 2] = [joined[:cut], joined[cut:]] if shifted else [joined]
        elif operation == "dba" and rng.random() < 0.3:
            words += ["DBA", *rng.choice(other_names).upper().split()]
    text = " ".join(words)
    if len(text) > 24 and rng.random() < 0.25:  # a payment system's fixed-width field
        text = text[: rng.randint(22, 36)].rstrip()
    return rng.choice((text, text.lower(), text.title()))


def noisy_city(city: str, rng: random.Random) -> str:
    if rng.random() < 0.15:
        words = city.split()
        i = rng.randrange(len(words))
        words[i] = words[i][: max(3, len(words[i]) - rng.randint(1, 4))]
        return " ".join(words)
    return city


@dataclass(frozen=True)
class Example:
    name: str
    city: str | None
    state: str | None
    postal_code: str | None
    truth: str | None
    kind: str = ""
    default_state: str | None = None
    default_country: str | None = DEFAULT_COUNTRY
    address: str | None = None  # the address lines, comma-separated

    def match(self, index: SupplierIndex) -> MatchResult:
        return index.match(
            self.name, self.city, self.state, self.postal_code,
            default_state=self.default_state, default_country=self.default_country, address_lines=self.address,
        )

    def place(self) -> QueryPlace:
        return QueryPlace.for_payee(
            normalize_name(self.name), Location.of(self.city, self.state, self.postal_code),
            default_state=self.default_state, default_country=self.default_country, street=street_key(self.address),
        )


def located(
    supplier: Supplier, other_cities: list[tuple[str, str]], rng: random.Random, moved: float = 0.05
) -> tuple[dict[str, str | None], bool]:
    """The place fields a payee of ``supplier`` has, and whether it is elsewhere than registered."""
    pattern = rng.choices(("none", "state", "city", "city+state", "all"), weights=(30, 25, 10, 20, 15))[0]
    registered = registered_place(supplier)
    city, state = registered.city, registered.state
    elsewhere = rng.random() < moved  # payee's address differs from the registered one
    if elsewhere:
        city, state = rng.choice(other_cities)
    return {
        "city": noisy_city(city, rng) if city and ("city" in pattern or pattern == "all") else None,
        "state": state if "state" in pattern or pattern == "all" else None,
        "postal_code": registered.postal_code if pattern == "all" else None,
    }, elsewhere


# How often a payee carries address lines, by the place fields it has: a file with the ZIP has
# the whole address block; one with a state only seldom has more.
ADDRESS_GIVEN = {"postal_code": 0.85, "city": 0.5, "state": 0.2, "none": 0.05}
# How often a payee of a supplier gives an address that is not the registered one (a remit-to
# box, another office), besides payees that are elsewhere altogether.
OTHER_ADDRESS = 0.2


def street_spellings() -> dict[str, tuple[str, ...]]:
    """Each street type or direction to the spellings clerks use for it (the USPS variants
    scourgify reads): AVE → AV, AVE, AVEN, AVENU, AVENUE, AVN, AVNUE."""
    groups: dict[str, set[str]] = {}
    for spelling, standard in (*STREET_TYPE_ABBREVIATIONS.items(), *DIRECTIONAL_REPLACEMENTS.items()):
        groups.setdefault(standard, {standard}).add(spelling)
    return {spelling: tuple(sorted(group)) for group in groups.values() for spelling in group}


STREET_SPELLINGS = street_spellings()
UNIT_WORDS = ("STE", "SUITE", "#", "UNIT", "APT", "FL")
BOX_SPELLINGS = ("PO BOX", "P.O. BOX", "P O BOX", "POB", "PO BOX #", "POST OFFICE BOX")


def typed_address(address: str, rng: random.Random) -> str:
    """A registered address line as a payment file has it: street types and directions spelt
    out or abbreviated, a suite added or left off, a box written another way, now and then a
    slip in the name or the number, an attention line, any case."""
    words = address.upper().split()
    if words[:2] == ["PO", "BOX"] and rng.random() < 0.5:
        words[:2] = [rng.choice(BOX_SPELLINGS)]
    for i, word in enumerate(words):
        if i and word in STREET_SPELLINGS and rng.random() < 0.4:
            words[i] = rng.choice(STREET_SPELLINGS[word])
    units = [i for i, word in enumerate(words) if word in UNIT_WORDS]
    roll = rng.random()
    if units and roll < 0.3:
        words = words[: units[0]]  # the suite left off
    elif not units and roll < 0.2:
        words += [rng.choice(UNIT_WORDS), str(rng.randint(1, 999))]
    slip = rng.random()
    long_words = [i for i, word in enumerate(words[1:], start=1) if len(word) >= 5 and word.isalpha()]
    if slip < 0.05 and long_words:
        i = rng.choice(long_words)
        words[i] = typo(words[i], rng)
    elif slip < 0.07 and words[0].isdigit() and len(words[0]) > 1:
        words[0] = words[0][::-1] if len(set(words[0])) > 1 else words[0] + "0"  # digits swapped or one more
    lines = [" ".join(words)]
    if rng.random() < 0.05:
        lines.insert(0, rng.choice(("ATTN: ACCOUNTS PAYABLE", "C/O FINANCE DEPT")))
    text = ", ".join(lines)
    return rng.choice((text, text.title()))


def payee_address(
    place: dict[str, str | None], own: str, streets: list[str], rng: random.Random
) -> str | None:
    """The address lines of a payee with these place fields whose own address is ``own`` ('' for
    one of unknown address: a street of someone else's, as good as any)."""
    given = "postal_code" if place["postal_code"] else "city" if place["city"] else "state" if place["state"] else "none"
    if rng.random() >= ADDRESS_GIVEN[given]:
        return None
    if not own or rng.random() < OTHER_ADDRESS:
        own = rng.choice(streets) if rng.random() < 0.5 else f"PO BOX {rng.randint(1, 99999)}"
    return typed_address(own, rng)


def _half(text: str, salt: int) -> bool:
    return zlib.crc32(f"{salt}:{text}".encode()) % 2 == 0


def open_world_split(suppliers: list[Supplier], salt: int) -> tuple[list[Supplier], list[Supplier]]:
    """(indexed, absent): nonprofits and government bodies by state (half of the states), the
    manufacturers by name, so that one organisation's registrations stay on one side and the
    absent side is full of namesakes of indexed suppliers, as payment files are."""
    indexed, absent = [], []
    for supplier in suppliers:
        if supplier.category == "business" or not supplier.state:
            side = _half(normalize_name(supplier.name).key, salt)
        else:
            side = _half(supplier.state, salt)
        (indexed if side else absent).append(supplier)
    return indexed, absent


CATEGORIES = ("business", "government", "nonprofit")
PAYEE_CATEGORY_MIX = (35, 35, 30)
US_VENDOR_SHARE = 0.85
COMPANY_PAID_ELSEWHERE = 0.25
COMMERCE = (
    "PLUMBING", "LANDSCAPING", "CONSULTING", "ELECTRIC", "COFFEE", "AUTO REPAIR", "ROOFING", "CATERING",
    "BAKERY", "TOWING", "PRINTING", "CLEANING SERVICES", "PEST CONTROL", "FLOORING", "GRILL", "TACOS",
    "MOTORS", "DESIGN", "PHOTOGRAPHY", "HEATING AND COOLING", "TIRE", "GLASS", "SIGNS", "SUPPLY",
)
AFFILIATED_TAILS = (
    "FOUNDATION", "EMPLOYEES CREDIT UNION", "EMPLOYEES RECREATION CLUB", "ALUMNI ASSOCIATION",
    "AUXILIARY", "BOOSTER CLUB", "RETIREES ASSOCIATION", "CHAPTER 12", "POST 221", "LOCAL 45",
)
DESCRIPTOR_TAILS = (
    "WIRELESS", "SERVICES", "MERCHANT ACCOUNT", "GENERAL FUND", "US INC", "SALES CORPORATION", "USA",
    "NORTH AMERICA INC", "BILLING", "PAYMENTS",
)


def _person_name(rng: random.Random) -> str:
    name = person_names.get_full_name()
    if rng.random() < 0.3:
        first, last = name.split(" ", 1)
        name = f"{last}, {first}"
    return name


def _made_up_business(words: list[str], rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.3:
        return f"{person_names.get_last_name()}'S {rng.choice(COMMERCE)}"
    if shape < 0.6:
        return f"{rng.choice(words)} {rng.choice(COMMERCE)} {rng.choice(('LLC', 'INC', ''))}".strip()
    return " ".join(rng.sample(words, rng.choice((1, 2, 2, 3))))


def _real_word_edit(name: str, vocabulary: dict[int, list[str]], rng: random.Random) -> str | None:
    """The name with one real word changed into another real word one letter away."""
    words = name.upper().split()
    positions = [i for i, word in enumerate(words) if word.isalpha() and len(word) >= 4 and is_real_word(word)]
    rng.shuffle(positions)
    for i in positions:
        word = words[i]
        near = [
            other for other in vocabulary.get(len(word), ())
            if other != word and sum(a != b for a, b in zip(word, other, strict=True)) == 1
        ]
        if near:
            words[i] = rng.choice(near)
            return " ".join(words)
    return None


def _invented_word_changed(name: str, rng: random.Random) -> str | None:
    """The name with one letter of its invented word (no dictionary word) changed."""
    words = name.upper().split()
    positions = [i for i, word in enumerate(words) if word.isalpha() and len(word) >= 5 and not is_real_word(word)]
    if not positions:
        return None
    i = rng.choice(positions)
    word = words[i]
    j = rng.randrange(len(word))
    words[i] = word[:j] + rng.choice([c for c in LETTERS if c != word[j]]) + word[j + 1 :]
    return " ".join(words)


def _word_substituted(name: str, vocabulary: dict[int, list[str]], rng: random.Random) -> str | None:
    """The name with one of its words in place of another real word, no slip away from it: a
    sibling body ("MADISON CENTRAL BAND BOOSTERS" / "MADISON SOUTHERN BAND BOOSTERS")."""
    words = normalize_name(name).key.split()
    positions = [i for i, word in enumerate(words) if word.isalpha() and len(word) >= 3 and word not in JOINERS]
    if len(words) < 2 or not positions:
        return None
    i = rng.choice(positions)
    lengths = [length for length in vocabulary if abs(length - len(words[i])) <= 3]
    other = rng.choice(vocabulary[rng.choice(lengths)])
    if fuzz.ratio(other, words[i]) >= 50:  # a word a slip away reads as a typo of it
        return None
    words[i] = other
    return " ".join(words)


def _world_namesake(supplier: Supplier, rng: random.Random) -> str | None:
    """A company's name when it is an acronym or one or two everyday words ("HARRIS", "TCI",
    "HOMEWARD BOUND"): the name of many holders outside any list, of which this payee is one."""
    key = normalize_name(supplier.name).key
    words = key.split()
    short = len(key.replace(" ", "")) <= 4
    everyday = len(words) <= 2 and all(word.isalpha() and is_real_word(word) for word in words)
    if not key or not (short or everyday):
        return None
    return f"{key} {rng.choice(('', 'INC', 'LLC', 'CO', 'CORP'))}".strip()


def _names_an_indexed_supplier(name: str, index_keys: frozenset[str]) -> bool:
    key = normalize_name(name).key
    return key in index_keys or any(reading in index_keys for reading in loose_keys(key))


def open_world_examples(
    indexed: list[Supplier], absent: list[Supplier], count: int, rng: random.Random,
    index_keys: frozenset[str] | None = None,
) -> list[Example]:
    """Payees of an open world: most are not in the index (absent suppliers, which often share a
    name with an indexed one; persons; made-up businesses; an indexed name with an affiliated
    body's words, one real word changed or one word in place of another; a foreign manufacturer's name with a US form and place; an acronym or everyday
    company name of another holder), the rest are indexed suppliers written noisily, some with
    a descriptor tail."""
    # Addresses from a generator of their own: a seed draws the same names and places with them as without.
    typing = random.Random(str(rng.getstate()[1][:8]))
    random.seed(rng.random())  # the names package draws from the global generator
    sample = rng.sample(indexed, min(50_000, len(indexed)))
    all_names = [supplier.name for supplier in sample]
    cities = [(supplier.city, supplier.state) for supplier in sample if supplier.city]
    streets = [address for supplier in sample if (address := registered_place(supplier).address)[:1].isdigit()]
    words = sorted({word for name in all_names[:5000] for word in name.upper().split() if word.isalpha()})
    vocabulary: dict[int, list[str]] = {}
    for word in sorted({w for name in all_names for w in name.upper().split()}):
        if word.isalpha() and is_real_word(word):
            vocabulary.setdefault(len(word), []).append(word)
    foreign = [s for s in indexed if s.category == "business" and s.country not in ("", "US")]
    states = sorted({supplier.state for supplier in sample if len(supplier.state) == 2})
    def pools(suppliers: list[Supplier]) -> dict[str, list[Supplier]]:
        grouped = {category: [s for s in suppliers if s.category == category] for category in CATEGORIES}
        grouped["us_business"] = [s for s in grouped["business"] if s.country == "US"]
        return grouped

    by_category_indexed, by_category_absent = pools(indexed), pools(absent)
    everyday_companies = [s for s in by_category_indexed["business"] if _world_namesake(s, rng) is not None]
    kinds = ("present", "absent", "person", "made_up", "affiliated", "real_word_edit", "foreign_namesake",
             "descriptor_tail", "absent_descriptor_tail", "near_name", "word_substituted", "world_namesake")
    examples = []
    while len(examples) < count:
        # A payment file's payees: most in no supplier list (small businesses, persons, namesakes
        # of listed bodies), and the listed ones are businesses and public bodies as often as
        # nonprofits, whatever their share of the list.
        kind = rng.choices(kinds, weights=(30, 25, 10, 15, 3, 4, 4, 5, 4, 4, 4, 2))[0]
        is_present = kind in ("present", "descriptor_tail")
        category = rng.choices(CATEGORIES, weights=PAYEE_CATEGORY_MIX)[0]
        if category == "business" and rng.random() < US_VENDOR_SHARE:
            category = "us_business"  # a US payment file pays US companies, seldom foreign ones
        supplier = rng.choice((by_category_indexed if is_present else by_category_absent)[category])
        truth = supplier.supplier_id if is_present else None
        # Paid away from the registered place: a national body at its regional offices; a
        # company at branches and remit-to boxes as well as at its head office; a local body seldom.
        national = HolderKind.of(supplier, normalize_name(supplier.name)).national
        moved = 0.5 if national else COMPANY_PAID_ELSEWHERE if supplier.category == "business" else 0.05
        place, elsewhere = located(supplier, cities, rng, moved)
        own_address = "" if elsewhere else registered_place(supplier).address  # elsewhere: at an address of its own
        if kind == "person":
            city, state = rng.choice(cities)
            name = _person_name(rng)
            place = {"city": rng.choice((city, None)), "state": rng.choice((state, None)), "postal_code": None}
            own_address = ""
        elif kind == "made_up":
            name = _made_up_business(words, rng)
        elif kind == "affiliated":
            name = f"{rng.choice(all_names)} {rng.choice(AFFILIATED_TAILS)}"
        elif kind == "near_name":
            # Companies one letter apart (ZENTRIV / ZENTRIX): another company, not a typo.
            edited = _invented_word_changed(rng.choice(by_category_indexed["us_business"]).name, rng)
            if edited is None:
                continue
            name = edited
        elif kind == "real_word_edit":
            edited = _real_word_edit(rng.choice(all_names), vocabulary, rng)
            if edited is None:
                continue
            name = edited
        elif kind in ("word_substituted", "world_namesake"):
            namesake = rng.choice(by_category_indexed[category])
            if kind == "word_substituted":
                edited = _word_substituted(namesake.name, vocabulary, rng)
            else:
                edited = _world_namesake(rng.choice(everyday_companies), rng)
            if edited is None:
                continue
            # As written, but for the case: a slip could drop or cut the very words that differ.
            name = rng.choice((edited, edited.lower(), edited.title()))
            city, state = rng.choice(cities)
            # A sibling body is near its namesake (same town, another ZIP and street); another
            # holder of an everyday company name is anywhere.
            place = {**located(namesake, cities, rng)[0], "postal_code": None} if kind != "world_namesake" else {
                "city": rng.choice((city, None)), "state": rng.choice((state, None)), "postal_code": None}
            own_address = ""
        elif kind == "foreign_namesake":
            core = normalize_name(rng.choice(foreign).name).key
            name = f"{core} {rng.choice(('INC', 'LLC', 'CORP'))}"
            city, state = rng.choice(cities)
            place = {"city": rng.choice((city, None)), "state": rng.choice((state, None)), "postal_code": None}
            own_address = ""
        else:
            source = supplier.name
            if supplier.alt_name and rng.random() < 0.1:  # its other name, alone or as "X DBA Y"
                alt, main = supplier.alt_name, supplier.name
                source = rng.choice((alt, f"{alt} DBA {main}", f"{main} DBA {alt}"))
            if kind.endswith("descriptor_tail"):
                source = f"{normalize_name(source).key} {rng.choice(DESCRIPTOR_TAILS)}"
            # No "X DBA <a random supplier>": the payee would be that supplier as much as X.
            name = noisy_name(source, all_names, rng, supplier.category, dba=False)
        default_state = None
        if rng.random() < 0.3:  # the source system pays mostly in one state: the payee's, mostly
            home = supplier.state if len(supplier.state) == 2 else None
            default_state = home if home and rng.random() < 0.85 else rng.choice(states)
        # Made up, yet the name of an indexed supplier: it would be mislabelled (a foreign
        # namesake carries the indexed name by construction; its legal form and place differ).
        if (truth is None and kind not in ("foreign_namesake", "world_namesake") and index_keys is not None
                and _names_an_indexed_supplier(name, index_keys)):
            continue
        address = payee_address(place, own_address, streets, typing)
        examples.append(Example(name, **place, truth=truth, kind=kind, default_state=default_state, address=address))
    return examples


def registration(supplier: Supplier) -> tuple[str, ...]:
    """What tells one registration of an organisation from another (not from a re-registration):
    a company's rows in one town and ZIP are one office, however its street is spelt."""
    place = registered_place(supplier)
    office = "" if supplier.category == "business" and place.postal_code else supplier.address.upper()
    return (normalize_name(supplier.name).key, place.city.upper(), place.state.upper(),
            place.postal_code, supplier.category, supplier.country, office, supplier.alt_name.upper())


# One query for fitting: distinct feature vectors with their counts, and the truth's vector.
Group = tuple[list[tuple[tuple[float, ...], int]], tuple[float, ...] | None]


def feature_groups(index: SupplierIndex, examples: list[Example]) -> list[Group]:
    groups = []
    for example in examples:
        query = normalize_name(example.name)
        if not query.key:
            continue
        candidates = index.candidates(query, example.place())
        counts = Counter(candidate.features for candidate in candidates)
        truth = next((c.features for c in candidates if c.supplier_id == example.truth), None)
        groups.append((list(counts.items()), truth))
    return groups


def solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the system is small and positive definite)."""
    size = len(vector)
    rows = [row[:] + [value] for row, value in zip(matrix, vector, strict=True)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(col + 1, size):
            factor = rows[r][col] / rows[col][col]
            for c in range(col, size + 1):
                rows[r][c] -= factor * rows[col][c]
    solution = [0.0] * size
    for r in range(size - 1, -1, -1):
        solution[r] = (rows[r][size] - sum(rows[r][c] * solution[c] for c in range(r + 1, size))) / rows[r][r]
    return solution


def log_likelihood(groups: list[Group], weights: list[float], l2: float) -> float:
    total = -0.5 * l2 * sum(w * w for w in weights)
    for vectors, truth in groups:
        utilities = [sum(w * x for w, x in zip(weights, vector, strict=True)) for vector, _ in vectors]
        shift = max([0.0, *utilities])
        normaliser = math.exp(-shift) + sum(
            count * math.exp(u - shift) for (_, count), u in zip(vectors, utilities, strict=True)
        )
        chosen = sum(w * x for w, x in zip(weights, truth, strict=True)) if truth else 0.0
        total += chosen - shift - math.log(normaliser)
    return total


# Evidence that can only count against a match: a fit that gives one of these the other sign
# has learnt an artefact of the synthetic world (they are then held at 0 and the rest refitted).
AGAINST_ONLY = frozenset({
    "real_word_edit", "invented_word_edit", "affiliated_body", "descriptor_dropped", "words_substituted",
    "payee_words_unmatched", "word_swapped",
    "legal_form_conflict", "kind_conflict",
    "state_conflicts", "city_conflicts", "postal_conflicts", "national_place_conflict", "company_place_conflict",
    "country_conflicts",
    "default_place_conflicts", "local_nonprofit_unplaced", "local_government_unplaced", "common_name_nonprofit",
    "common_name_government", "common_name_business", "log_namesakes_unplaced", "log_namesakes_state_pinned",
    "short_name", "ends_in_joiner", "street_conflicts",
})


# ... and evidence that can only count for one (how far the names agree among them: the
# other sign would read "the payee's words are in the name" as evidence against it).
FOR_ONLY = frozenset({
    "similarity", "query_coverage", "name_coverage", "state_agrees", "city_agrees", "postal_agrees", "default_place_agrees", "both_names", "street_agrees",
})


def fit_softmax(
    groups: list[Group], start: list[float], l2: float, iterations: int = 40, held: frozenset[int] = frozenset(),
    kept: frozenset[int] = frozenset(),
) -> list[float]:
    """Damped Newton's method for the conditional logit with a "none" option at utility 0;
    the weights at the ``held`` positions stay at 0, those at the ``kept`` ones at ``start``."""
    size = len(FEATURES)
    weights = [0.0 if i in held else w for i, w in enumerate(start)]
    current = log_likelihood(groups, weights, l2)
    for _ in range(iterations):
        gradient = [-l2 * w for w in weights]
        hessian = [[l2 if i == j else 0.0 for j in range(size)] for i in range(size)]
        for vectors, truth in groups:
            utilities = [sum(w * x for w, x in zip(weights, vector, strict=True)) for vector, _ in vectors]
            shift = max([0.0, *utilities])
            exps = [count * math.exp(u - shift) for (_, count), u in zip(vectors, utilities, strict=True)]
            total = math.exp(-shift) + sum(exps)
            mean = [0.0] * size
            for (vector, _), e in zip(vectors, exps, strict=True):
                p = e / total
                for i in range(size):
                    if vector[i]:
                        mean[i] += p * vector[i]
                        row, pv = hessian[i], p * vector[i]
                        for j in range(size):
                            row[j] += pv * vector[j]
            for i in range(size):
                for j in range(size):
                    hessian[i][j] -= mean[i] * mean[j]
                gradient[i] += (truth[i] if truth else 0.0) - mean[i]
        for i in held | kept:  # no step there
            gradient[i] = 0.0
            for j in range(size):
                hessian[i][j] = hessian[j][i] = 0.0
            hessian[i][i] = 1.0
        step = solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-4:  # halve the step until the likelihood improves
            trial = [w + scale * s for w, s in zip(weights, step, strict=True)]
            value = log_likelihood(groups, trial, l2)
            if value >= current:
                break
            scale /= 2
        else:
            break
        improvement, weights, current = value - current, trial, value
        print(f"  log-likelihood {current:,.2f}", flush=True)
        if improvement < 1e-3:
            break
    return weights


def open_world_report(index: SupplierIndex, examples: list[Example], by_id: dict[str, Supplier]) -> Outcome:
    """Precision, recall on present payees and abstention on absent ones, overall and per kind;
    a match to another registration of the true organisation counts as right."""
    overall, per_kind = Outcome(), {}
    reliability: dict[int, list[bool]] = {}
    matched_scores: list[tuple[float, bool, str | None]] = []
    keys = {supplier_id: registration(supplier) for supplier_id, supplier in by_id.items()}

    def same(predicted: str | None, truth: str | None) -> str | None:
        if predicted is not None and truth is not None and keys.get(predicted) == keys.get(truth):
            return truth
        return predicted

    for example in examples:
        result = example.match(index)
        predicted = same(result.supplier_id if result.decision == "matched" else None, example.truth)
        overall.add(predicted, example.truth)
        if predicted is not None:
            matched_scores.append((result.score, predicted == example.truth, example.truth))
        per_kind.setdefault(example.kind, Outcome()).add(predicted, example.truth)
        top = result.supplier_id or (result.runner_up[0] if result.runner_up else None)
        if top is not None:
            reliability.setdefault(min(9, int(result.score * 10)), []).append(same(top, example.truth) == example.truth)
    header = f"{'open world, by kind':<28}{'queries':>8}{'matched':>9}{'precision':>10}{'recall':>9}{'abstain':>9}"
    print(header)
    print("-" * len(header))
    for kind, outcome in sorted(per_kind.items()) + [("all", overall)]:
        queries = outcome.positives + outcome.negatives
        recall = f"{outcome.recall:>9.2%}" if outcome.positives else f"{'':>9}"
        abstain = f"{outcome.abstention:>9.2%}" if outcome.negatives else f"{'':>9}"
        print(f"{kind:<28}{queries:>8,}{outcome.emitted:>9,}{outcome.precision:>10.2%}{recall}{abstain}")
    print("at higher thresholds (a match needs score >= threshold):")
    for threshold in (0.85, 0.9, 0.95):
        emitted = [(right, truth) for score, right, truth in matched_scores if score >= threshold]
        right = sum(1 for ok, _ in emitted if ok)
        positives = overall.positives
        print(f"  {threshold:.2f}: matched {len(emitted):,}, precision {right / max(1, len(emitted)):.2%}, "
              f"recall {sum(1 for ok, truth in emitted if ok and truth) / max(1, positives):.2%}")
    print("reliability of the top candidate (score bin: n, share right)")
    for bucket in sorted(reliability):
        hits = reliability[bucket]
        print(f"  {bucket / 10:.1f}-{(bucket + 1) / 10:.1f}: n={len(hits):>5}  right {statistics.fmean(hits):.3f}")
    return overall


def open_world(args: argparse.Namespace, suppliers: list[Supplier], seed: int) -> tuple[SupplierIndex, list[Example]]:
    """The half index and ``args.synthetic`` open-world payees drawn with ``seed``."""
    indexed, absent = open_world_split(suppliers, salt=args.seed)
    index, build_s = build_index(indexed)
    print(f"open-world index: {len(indexed):,} suppliers ({build_s:.0f} s); {len(absent):,} absent", flush=True)
    keys = frozenset(index.name_suppliers)
    return index, open_world_examples(indexed, absent, args.synthetic, random.Random(seed), keys)


def calibrate(args: argparse.Namespace) -> None:
    """Fit the weights on one draw of the open world, report them on another."""
    suppliers = load_suppliers(args.suppliers)
    index, fitting = open_world(args, suppliers, seed=args.seed)
    checking = open_world_examples(
        *open_world_split(suppliers, salt=args.seed), args.synthetic // 2, random.Random(args.seed + 1),
        frozenset(index.name_suppliers),
    )
    # --only: fit the named weights alone, every other one kept as it is (a feature added to a
    # fitted model); otherwise fit all from zero.
    only = {FEATURES.index(name) for name in args.only}
    weights = list(WEIGHTS) if only else [0.0] * len(FEATURES)
    kept = frozenset(i for i in range(len(FEATURES)) if only and i not in only)
    held: frozenset[int] = frozenset()
    for round_number in range(3):  # which name of a supplier is scored depends on the weights: refit
        groups = feature_groups(index, fitting)
        weights = fit_softmax(groups, weights, l2=args.l2, held=held, kept=kept)
        wrong_sign = {
            i for i, name in enumerate(FEATURES)
            if (name in AGAINST_ONLY and weights[i] > 0) or (name in FOR_ONLY and weights[i] < 0)
        }
        held |= wrong_sign
        if wrong_sign:
            weights = fit_softmax(groups, weights, l2=args.l2, held=held, kept=kept)
        index.weights = tuple(weights)
        print(f"round {round_number + 1}: fitted on {len(groups):,} open-world queries; held at 0: "
              f"{sorted(FEATURES[i] for i in held)}", flush=True)
    print("\nWEIGHTS = (")
    for name, weight in zip(FEATURES, weights, strict=True):
        print(f"    {weight:.4f},  # {name}")
    print(")")
    open_world_report(index, checking, {supplier.supplier_id: supplier for supplier in suppliers})


SLICE_DIR = ROOT / "tests" / "fixtures" / "open_world"


def write_slice(args: argparse.Namespace) -> None:
    """A small fixed open-world slice for tests/: payees of one draw and, as its index, every
    indexed supplier any of them was weighed against (plus each present payee's truth)."""
    suppliers = load_suppliers(args.suppliers)
    index, examples = open_world(args, suppliers, seed=args.open_world_seed + 1)
    examples = examples[: args.slice]
    keep: set[str] = set()
    for example in examples:
        result = example.match(index)
        keep.update(view.supplier_id for view in result.candidates)
        if example.truth:
            keep.add(example.truth)
    SLICE_DIR.mkdir(parents=True, exist_ok=True)
    with (SLICE_DIR / "suppliers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUPPLIER_FIELDS)
        for supplier in suppliers:
            if supplier.supplier_id in keep:
                writer.writerow([getattr(supplier, field) for field in SUPPLIER_FIELDS])
    with (SLICE_DIR / "payees.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["kind", "name", "address", "city", "state", "postal_code", "default_state", "truth"])
        for example in examples:
            writer.writerow([example.kind, example.name, example.address or "", example.city or "",
                             example.state or "", example.postal_code or "", example.default_state or "",
                             example.truth or ""])
    print(f"wrote {len(examples)} payees and {len(keep)} suppliers to {SLICE_DIR}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suppliers", type=Path, default=SHARED / "suppliers.csv.gz")
    parser.add_argument("--queries", type=Path, default=SHARED / "dev_match_queries.csv")
    parser.add_argument("--brute-force-sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calibrate", action="store_true", help="refit the weights on the synthetic open world")
    parser.add_argument("--synthetic", type=int, default=10000, help="open-world queries (fitting and evaluation)")
    parser.add_argument("--open-world-seed", type=int, default=1007, help="draw of the evaluated open world")
    parser.add_argument("--l2", type=float, default=1.0, help="ridge penalty of the calibration fit")
    parser.add_argument("--only", nargs="+", default=[], choices=FEATURES, metavar="FEATURE",
                        help="with --calibrate: fit these weights alone, keep the others")
    parser.add_argument("--write-slice", action="store_true", help="write the open-world slice of tests/fixtures")
    parser.add_argument("--slice", type=int, default=600, help="payees in that slice")
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], None] = (
        calibrate if args.calibrate else write_slice if args.write_slice else benchmark
    )
    run(args)


if __name__ == "__main__":
    main()
