"""Audit of what the matcher auto-matches on real payee strings.

    python bench/audit_real_matches.py [--default-place US-AZ]

Runs every payee of ``../shared/data/real_payees_unlabelled.csv`` (a city's vendor payments: no
labels, no payee places) against the full supplier list, prints every ``matched`` and
``ambiguous`` outcome, and counts the matches against ``bench/data/real_match_judgements.csv``:
by-eye verdicts (right / wrong, with why) on matches this or an earlier build made. A match not
judged yet is listed as such, so a change that makes new matches shows what is left to check.
The payees are an audit set, never a training set: nothing here feeds weights or vocabularies.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.matching import DefaultPlaces, SupplierIndex  # noqa: E402
from domain.suppliers import RowError, read_suppliers_csv  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
JUDGEMENTS = ROOT / "bench" / "data" / "real_match_judgements.csv"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suppliers", type=Path, default=SHARED / "suppliers.csv.gz")
    parser.add_argument("--payees", type=Path, default=SHARED / "real_payees_unlabelled.csv")
    parser.add_argument("--judgements", type=Path, default=JUDGEMENTS)
    parser.add_argument("--default-place", default="", help='the source\'s default place, e.g. "US-AZ"')
    args = parser.parse_args(argv)

    started = time.perf_counter()
    index = SupplierIndex()
    for supplier in read_suppliers_csv(args.suppliers):
        if not isinstance(supplier, RowError):
            index.upsert(supplier)
    print(f"index: {len(index):,} suppliers in {time.perf_counter() - started:.0f} s")
    defaults = DefaultPlaces.parse("US", {"audit": args.default_place} if args.default_place else {})
    default_state, default_country = defaults.for_source("audit")

    with args.judgements.open(newline="", encoding="utf-8") as handle:
        verdicts = {(row["id"], row["supplier_id"]): row for row in csv.DictReader(handle)}
    with args.payees.open(newline="", encoding="utf-8") as handle:
        payees = list(csv.DictReader(handle))

    decisions: Counter[str] = Counter()
    tally: Counter[str] = Counter()
    for payee in payees:
        result = index.match(payee["name"], default_state=default_state, default_country=default_country)
        decisions[result.decision] += 1
        if result.decision == "none":
            continue
        if result.decision == "ambiguous":
            print(f"  ambiguous {payee['id']:<16} {payee['name'][:40]:<40} ~ {result.reason}")
            continue
        judged = verdicts.get((payee["id"], result.supplier_id))
        verdict = judged["verdict"] if judged else "unjudged"
        tally[verdict] += 1
        note = f"  ({judged['note']})" if judged and judged["note"] else ""
        print(f"  {verdict:<9} {payee['id']:<16} {payee['name'][:40]:<40} -> {result.supplier_id} "
              f"{(result.supplier_name or '')[:40]} {result.score:.2f}{note}")
    print(f"\n{len(payees):,} payees: {dict(decisions)}")
    matched = decisions["matched"]
    print(f"matched {matched}: judged right {tally['right']}, judged wrong {tally['wrong']}, "
          f"unjudged {tally['unjudged']}")


if __name__ == "__main__":
    main()
