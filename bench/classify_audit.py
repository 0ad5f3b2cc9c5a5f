"""Audit of the rule classifier on real, unlabelled payee strings (a city's vendor payees).

Prints the classes assigned to every record, the share below the LLM and review thresholds, then a
fixed-seed random sample of 200 records with the class assigned next to the class judged by eye
(bench/data/classify_audit_judgements.csv, keyed by id), and the errors among the confident calls.
The judgements say what each sampled payee is, not what the classifier said, so the same file scores
any version of the classifier.

The costliest miss is a business called an individual with confidence (it skips the LLM and review),
so every payee that this version or the one before (rules 2025.1) calls a confident individual is also
judged by eye (bench/data/classify_audit_person_calls.csv); a confident individual call outside that
file is reported as not judged.

    python bench/classify_audit.py [--data-dir ../shared/data] [--quiet]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from domain.classify import LLM_CONFIDENCE_THRESHOLD, Classification, classify_payee  # noqa: E402

AUDIT_FILE_NAME = "real_payees_unlabelled.csv"
JUDGEMENTS = Path(__file__).resolve().parent / "data" / "classify_audit_judgements.csv"
PERSON_CALL_JUDGEMENTS = Path(__file__).resolve().parent / "data" / "classify_audit_person_calls.csv"
SAMPLE_SIZE = 200
SAMPLE_SEED = 16
# The pipeline sends results below this confidence to the review queue (PAYEE_STREAM_REVIEW_THRESHOLD's
# default); at or above it a result skips both the LLM and review.
REVIEW_THRESHOLD = 0.75
CLASSES = ("individual", "business", "government", "unknown")


def load_payees(data_dir: Path) -> list[tuple[str, str]]:
    with (data_dir / AUDIT_FILE_NAME).open(encoding="utf-8", newline="") as handle:
        return [(row["id"], row["name"]) for row in csv.DictReader(handle)]


def load_judgements(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row["judged_type"] for row in csv.DictReader(handle)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--quiet", action="store_true", help="figures only, no sample listing")
    arguments = parser.parse_args()

    payees = load_payees(arguments.data_dir)
    results = {payee_id: classify_payee(name) for payee_id, name in payees}
    total = len(payees)
    assigned = Counter(result.entity_type for result in results.values())
    confident = Counter(
        result.entity_type for result in results.values() if result.confidence >= REVIEW_THRESHOLD
    )
    print(f"{total} payees of {AUDIT_FILE_NAME}")
    print(f"{'class':<12}{'assigned':>16}{'confident (>= 0.75)':>24}")
    for label in CLASSES:
        print(
            f"{label:<12}{assigned[label]:>8} {100 * assigned[label] / total:5.1f}%"
            f"{confident[label]:>16} {100 * confident[label] / total:5.1f}%"
        )
    below_llm = sum(result.confidence < LLM_CONFIDENCE_THRESHOLD for result in results.values())
    below_review = sum(result.confidence < REVIEW_THRESHOLD for result in results.values())
    for label, threshold, below in (
        ("LLM", LLM_CONFIDENCE_THRESHOLD, below_llm),
        ("review", REVIEW_THRESHOLD, below_review),
    ):
        print(f"below the {label} threshold ({threshold}): {below} ({100 * below / total:.1f}%)")

    judgements = load_judgements(JUDGEMENTS)
    sample = random.Random(SAMPLE_SEED).sample(payees, SAMPLE_SIZE)
    errors: list[tuple[str, str, str, float, str]] = []
    confident_calls = judged = 0
    if not arguments.quiet:
        print(f"\nsample of {SAMPLE_SIZE} (seed {SAMPLE_SEED}): id, assigned, confidence, judged, name")
    for payee_id, name in sample:
        result = results[payee_id]
        judged_type = judgements.get(payee_id, "")
        mark = ""
        if judged_type:
            judged += 1
        if result.confidence >= REVIEW_THRESHOLD and judged_type:
            confident_calls += 1
            if judged_type != result.entity_type:
                errors.append((payee_id, result.entity_type, judged_type, result.confidence, name))
                mark = "  <-- wrong"
        if not arguments.quiet:
            print(
                f"{payee_id:<16}{result.entity_type:<11}{result.confidence:5.2f}  "
                f"{judged_type or '?':<11}{name}{mark}"
            )
    print(f"\njudged by eye: {judged} of {SAMPLE_SIZE} sampled")
    if confident_calls:
        print(
            f"errors among confident calls (>= {REVIEW_THRESHOLD}): {len(errors)} of {confident_calls} "
            f"({100 * len(errors) / confident_calls:.1f}%)"
        )
    sampled_results = [results[payee_id] for payee_id, _ in sample]
    wrong_below = sum(
        1
        for (payee_id, _), result in zip(sample, sampled_results, strict=True)
        if judgements.get(payee_id) and result.confidence < REVIEW_THRESHOLD
        and judgements[payee_id] != result.entity_type
    )
    print(f"wrong but below the review threshold (sent to the LLM or review): {wrong_below}")
    for payee_id, assigned_type, judged_type, confidence, name in errors:
        print(f"  {payee_id}: {name!r} assigned {assigned_type} at {confidence:.2f}, judged {judged_type}")
    print_person_calls(payees, results)


def print_person_calls(payees: list[tuple[str, str]], results: dict[str, Classification]) -> None:
    person_calls = load_judgements(PERSON_CALL_JUDGEMENTS)
    names = dict(payees)
    confident_individuals = [
        payee_id
        for payee_id, result in results.items()
        if result.entity_type == "individual" and result.confidence >= REVIEW_THRESHOLD
    ]
    judged = [payee_id for payee_id in confident_individuals if payee_id in person_calls]
    wrong = [payee_id for payee_id in judged if person_calls[payee_id] != "individual"]
    print(
        f"\nconfident individual calls (>= {REVIEW_THRESHOLD}) in the whole file: "
        f"{len(confident_individuals)}, judged by eye {len(judged)}, not judged "
        f"{len(confident_individuals) - len(judged)}"
    )
    print(f"businesses among the judged: {len(wrong)}")
    for payee_id in wrong:
        print(f"  {payee_id}: {names[payee_id]!r} at {results[payee_id].confidence:.2f}")


if __name__ == "__main__":
    main()
