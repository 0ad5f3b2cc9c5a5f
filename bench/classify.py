"""Classifier figures on the dev file: accuracy per class with no LLM, accuracy per confidence band and
the share of records the LLM and review thresholds catch, throughput, probablepeople alongside.

Run from anywhere: python bench/classify.py  (reads ../shared/data/dev_entity_types.csv next to the repo).
"""

from __future__ import annotations

import csv
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from domain.classify import (  # noqa: E402
    LLM_CONFIDENCE_THRESHOLD,
    RULES_VERSION,
    Classification,
    classify_payee,
)

DEV_FILE = REPO_ROOT.parent / "shared" / "data" / "dev_entity_types.csv"
# Noisy supplier-style names (organisations only) with their entity type: a second, differently built check.
MATCH_QUERIES_FILE = REPO_ROOT.parent / "shared" / "data" / "dev_match_queries.csv"
CLASSES = ("individual", "business", "government")
THROUGHPUT_ROUNDS = 3
# The pipeline's default review threshold (PAYEE_STREAM_REVIEW_THRESHOLD).
REVIEW_THRESHOLD = 0.75
CONFIDENCE_BANDS = ((0.0, 0.6), (0.6, 0.7), (0.7, 0.75), (0.75, 0.85), (0.85, 0.95), (0.95, 1.01))


def load_rows() -> list[tuple[str, str]]:
    with DEV_FILE.open(encoding="utf-8", newline="") as handle:
        return [(row["name"], row["entity_type"].strip()) for row in csv.DictReader(handle)]


def load_match_query_rows() -> list[tuple[str, str]]:
    with MATCH_QUERIES_FILE.open(encoding="utf-8", newline="") as handle:
        return [(row["name"], row["true_entity_type"].strip()) for row in csv.DictReader(handle)]


def probablepeople_type(name: str) -> str:
    """probablepeople tags Person / Corporation / Household; it has no government class."""
    import probablepeople

    try:
        _, tag = probablepeople.tag(name)
    except probablepeople.RepeatedLabelError:
        # Ambiguous tagging: fall back to its per-token labels.
        labels = [label for _, label in probablepeople.parse(name)]
        tag = "Corporation" if any(label.startswith("Corporation") for label in labels) else "Person"
    return "business" if tag == "Corporation" else "individual"


def accuracy_table(rows: list[tuple[str, str]], predictions: list[str]) -> dict[str, tuple[int, int]]:
    correct: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for (_, truth), predicted in zip(rows, predictions, strict=True):
        total[truth] += 1
        correct[truth] += predicted == truth
    table = {label: (correct[label], total[label]) for label in CLASSES}
    table["overall"] = (sum(correct.values()), sum(total.values()))
    return table


def percent(pair: tuple[int, int]) -> str:
    hits, count = pair
    return f"{100 * hits / count:6.2f}% ({hits}/{count})" if count else "n/a"


def print_calibration(rows: list[tuple[str, str]], results: list[Classification]) -> None:
    """Confidence should mean what it says: the accuracy within each band should reach its floor."""
    print(f"{'confidence':<14}{'records':>9}{'share':>8}{'accuracy':>10}")
    for low, high in CONFIDENCE_BANDS:
        in_band = [
            (truth, result.entity_type)
            for (_, truth), result in zip(rows, results, strict=True)
            if low <= result.confidence < high
        ]
        hits = sum(truth == predicted for truth, predicted in in_band)
        label = f"{low:.2f}-{min(high, 1.0):.2f}"
        accuracy = f"{100 * hits / len(in_band):9.2f}%" if in_band else f"{'n/a':>10}"
        print(f"{label:<14}{len(in_band):>9}{100 * len(in_band) / len(rows):7.1f}%{accuracy}")
    for name, threshold in (("LLM", LLM_CONFIDENCE_THRESHOLD), ("review", REVIEW_THRESHOLD)):
        below = sum(result.confidence < threshold for result in results)
        print(f"below the {name} threshold ({threshold}): {below} ({100 * below / len(rows):.1f}%)")
    confident = [
        (truth, result.entity_type)
        for (_, truth), result in zip(rows, results, strict=True)
        if result.confidence >= REVIEW_THRESHOLD
    ]
    wrong = sum(truth != predicted for truth, predicted in confident)
    print(f"errors among confident calls (>= {REVIEW_THRESHOLD}): {wrong} of {len(confident)}")


def measure_throughput(names: list[str]) -> float:
    classify_payee(names[0])  # load census names and the SIC list outside the timing
    best = 0.0
    for _ in range(THROUGHPUT_ROUNDS):
        started = time.perf_counter()
        for name in names:
            classify_payee(name)
        best = max(best, len(names) / (time.perf_counter() - started))
    return best


def main() -> None:
    rows = load_rows()
    names = [name for name, _ in rows]
    results = [classify_payee(name) for name in names]
    ours = accuracy_table(rows, [result.entity_type for result in results])
    records_per_second = measure_throughput(names)
    started = time.perf_counter()
    theirs = accuracy_table(rows, [probablepeople_type(name) for name in names])
    theirs_per_second = len(names) / (time.perf_counter() - started)

    print(f"classifier rules {RULES_VERSION}, no LLM, {len(rows)} rows of {DEV_FILE.name}")
    print(f"{'class':<12}{'payee-stream rules':<30}{'probablepeople':<30}")
    for label in (*CLASSES, "overall"):
        print(f"{label:<12}{percent(ours[label]):<30}{percent(theirs[label]):<30}")
    print(f"{'records/s':<12}{records_per_second:<30,.0f}{theirs_per_second:<30,.0f}")
    print(
        "probablepeople has no government class: government rows count as errors for it "
        "(its Person/Household tags map to individual, Corporation to business)."
    )
    print()
    print_calibration(rows, results)

    query_rows = load_match_query_rows()
    query_results = [classify_payee(name) for name, _ in query_rows]
    queries = accuracy_table(query_rows, [result.entity_type for result in query_results])
    print(f"\n{len(query_rows)} rows of {MATCH_QUERIES_FILE.name} (organisations only)")
    for label in ("business", "government", "overall"):
        print(f"{label:<12}{percent(queries[label])}")
    print_calibration(query_rows, query_results)


if __name__ == "__main__":
    main()
