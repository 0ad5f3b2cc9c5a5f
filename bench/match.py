"""Matching benchmark and calibration.

    python bench/match.py                 # build, snapshot, dev queries vs brute-force WRatio
    python bench/match.py --calibrate     # refit domain.matching.WEIGHTS on synthetic variants

The benchmark reads ``../shared/data`` (relative to the repository root) unless told otherwise.
Calibration never looks at the dev queries: it holds suppliers out of the index, makes noisy
payee names from the supplier list itself (typos, truncation, legal-suffix changes, dropped and
swapped words, abbreviations, DBA tails, persons' names, spliced names) and fits the softmax
weights by maximum likelihood; paste the printed tuple into ``domain/matching.py``.
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
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import names as person_names  # noqa: E402
from rapidfuzz import fuzz, process, utils  # noqa: E402

from domain.matching import (  # noqa: E402
    FEATURES,
    Location,
    SupplierIndex,
    freeze_built_index,
    usable_alt_name,
)
from domain.normalize import ABBREVIATIONS, normalize_name  # noqa: E402
from domain.suppliers import RowError, Supplier, read_suppliers_csv  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
BRUTE_FORCE_CUTOFF = 90.0


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
    for supplier in suppliers:
        index.upsert(supplier)
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
        result = index.match(row["name"], city=row["city"] or None, state=row["state"] or None)
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
        index.save(snapshot)
        save_s = time.perf_counter() - started
        started = time.perf_counter()
        loaded = SupplierIndex.load(snapshot)
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


def noisy_name(name: str, other_names: list[str], rng: random.Random) -> str:
    words = name.upper().split()
    for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
        operation = rng.choice(
            ("typo", "typo", "suffix", "drop", "swap", "abbreviate", "ampersand", "the", "punctuation", "space",
             "dba")
        )
        long_words = [i for i, word in enumerate(words) if len(word) >= 4]
        if operation == "typo" and long_words:
            i = rng.choice(long_words)
            words[i] = typo(words[i], rng)
        elif operation == "suffix":
            if len(words) > 1 and words[-1].strip(".,") in {form.strip(".") for form in LEGAL_FORMS}:
                words.pop()
                if rng.random() < 0.5:
                    words.append(rng.choice(LEGAL_FORMS))
            else:
                words.append(rng.choice(LEGAL_FORMS))
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


def located(
    supplier: Supplier, other_cities: list[tuple[str, str]], rng: random.Random
) -> dict[str, str | None]:
    pattern = rng.choices(("none", "state", "city", "city+state", "all"), weights=(20, 35, 15, 25, 5))[0]
    city, state = supplier.city, supplier.state
    if rng.random() < 0.05:  # payee's address differs from the registered one
        city, state = rng.choice(other_cities)
    return {
        "city": noisy_city(city, rng) if city and ("city" in pattern or pattern == "all") else None,
        "state": state if "state" in pattern or pattern == "all" else None,
        "postal_code": supplier.postal_code if pattern == "all" else None,
    }


def synthetic_examples(
    indexed: list[Supplier], held_out: list[Supplier], count: int, rng: random.Random
) -> list[Example]:
    random.seed(rng.random())  # the names package draws from the global generator
    all_names = [supplier.name for supplier in indexed[:50_000]]
    cities = [(supplier.city, supplier.state) for supplier in indexed[:50_000] if supplier.city]
    examples = []
    for _ in range(count):
        kind = rng.choices(("indexed", "held_out", "person", "spliced"), weights=(60, 22, 9, 9))[0]
        if kind == "person":
            name = person_names.get_full_name()
            if rng.random() < 0.3:
                first, last = name.split(" ", 1)
                name = f"{last}, {first}"
            city, state = rng.choice(cities)
            examples.append(Example(name, rng.choice((city, None)), rng.choice((state, None)), None, None))
            continue
        if kind == "spliced":
            first, second = rng.choice(all_names).split(), rng.choice(all_names).split()
            name = " ".join(first[: max(1, len(first) // 2)] + second[len(second) // 2 :])
            supplier = rng.choice(held_out)
            examples.append(Example(name, **located(supplier, cities, rng), truth=None))
            continue
        supplier = rng.choice(indexed if kind == "indexed" else held_out)
        source = supplier.name
        if supplier.alt_name and rng.random() < 0.1:  # its other name, alone or as "X DBA Y"
            alt, name = supplier.alt_name, supplier.name
            source = rng.choice((alt, f"{alt} DBA {name}", f"{name} DBA {alt}"))
        examples.append(
            Example(
                noisy_name(source, all_names, rng),
                **located(supplier, cities, rng),
                truth=supplier.supplier_id if kind == "indexed" else None,
            )
        )
    return examples


# One query for fitting: distinct feature vectors with their counts, and the truth's vector.
Group = tuple[list[tuple[tuple[float, ...], int]], tuple[float, ...] | None]


def feature_groups(index: SupplierIndex, examples: list[Example]) -> list[Group]:
    groups = []
    for example in examples:
        query = normalize_name(example.name)
        if not query.key:
            continue
        candidates = index.candidates(query, Location.of(example.city, example.state, example.postal_code))
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


def fit_softmax(groups: list[Group], start: list[float], l2: float, iterations: int = 40) -> list[float]:
    """Damped Newton's method for the conditional logit with a "none" option at utility 0."""
    size = len(FEATURES)
    weights = list(start)
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


def calibration_report(index: SupplierIndex, examples: list[Example]) -> None:
    bins: dict[int, list[int]] = {}
    outcome = Outcome()
    for example in examples:
        result = index.match(example.name, example.city, example.state, example.postal_code)
        # A rejected best candidate travels as the runner-up of a "none" result.
        top = result.supplier_id or (result.runner_up[0] if result.runner_up else None)
        if top is not None:
            bins.setdefault(min(9, int(result.score * 10)), []).append(top == example.truth)
        outcome.add(result.supplier_id if result.decision == "matched" else None, example.truth)
    print("\nreliability of the top candidate on fresh synthetic queries (score bin: predicted vs observed)")
    for bucket in sorted(bins):
        hits = bins[bucket]
        low, high = bucket / 10, (bucket + 1) / 10
        print(f"  {low:.1f}-{high:.1f}: n={len(hits):>5}  right {statistics.fmean(hits):.3f}")
    print(f"at threshold {index.match_threshold}: precision {outcome.precision:.2%}, "
          f"recall {outcome.recall:.2%}, "
          f"abstention {outcome.abstention:.2%}")


def calibrate(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    suppliers = load_suppliers(args.suppliers)
    rng.shuffle(suppliers)
    cut = len(suppliers) // 20  # 5 % held out: payees that look like suppliers but are not in the index
    held_out, indexed = suppliers[:cut], suppliers[cut:]
    index, build_s = build_index(indexed)
    print(f"calibration index: {len(index):,} suppliers ({build_s:.0f} s), {len(held_out):,} held out",
          flush=True)
    fitting = synthetic_examples(indexed, held_out, args.synthetic, rng)
    checking = synthetic_examples(indexed, held_out, args.synthetic // 2, rng)
    weights = [0.0] * len(FEATURES)
    for round_number in range(2):  # which name of a supplier is scored depends on the weights: refit once
        groups = feature_groups(index, fitting)
        weights = fit_softmax(groups, weights, l2=args.l2)
        index.weights = tuple(weights)
        print(f"round {round_number + 1}: fitted on {len(groups):,} synthetic queries", flush=True)
    print("\nWEIGHTS = (")
    for name, weight in zip(FEATURES, weights, strict=True):
        print(f"    {weight:.4f},  # {name}")
    print(")")
    calibration_report(index, checking)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suppliers", type=Path, default=SHARED / "suppliers.csv.gz")
    parser.add_argument("--queries", type=Path, default=SHARED / "dev_match_queries.csv")
    parser.add_argument("--brute-force-sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--calibrate", action="store_true", help="refit the weights on synthetic queries")
    parser.add_argument("--synthetic", type=int, default=8000, help="synthetic queries for calibration")
    parser.add_argument("--l2", type=float, default=1.0, help="ridge penalty of the calibration fit")
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], None] = calibrate if args.calibrate else benchmark
    run(args)


if __name__ == "__main__":
    main()
