"""How many records reach the LLM under strict privacy: dev_entity_types.csv through the fast path.

Run from anywhere: python bench/llm_privacy_share.py  (reads ../shared/data/dev_entity_types.csv).
Rules only, with no supplier index (a matched supplier would count as organisation evidence).
"""

from __future__ import annotations

import csv
import sys
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from domain.matching import SupplierIndex  # noqa: E402
from domain.pipeline import Thresholds, enrich, route_to_llm  # noqa: E402
from schemas.events import PayeeRecord  # noqa: E402
from streams.settings import Settings  # noqa: E402

DEV_FILE = REPO_ROOT.parent / "shared" / "data" / "dev_entity_types.csv"


def main() -> None:
    defaults = Settings()
    thresholds = Thresholds(review=defaults.review_threshold, llm=defaults.llm_threshold)
    index = SupplierIndex()
    counts: Counter[str] = Counter()
    with DEV_FILE.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle)):
            record = PayeeRecord(source_system="dev", source_record_id=str(number), payee_name=row["name"])
            enrichment = enrich(record, index)
            counts["records"] += 1
            if not enrichment.needs_llm(thresholds):
                continue
            counts["need the LLM"] += 1
            _, sent = route_to_llm(enrichment, thresholds, "strict")
            counts[f"{'sent' if sent else 'withheld'}, labelled {row['entity_type']}"] += 1
    records, needing = counts.pop("records"), counts.pop("need the LLM")
    sent = sum(value for key, value in counts.items() if key.startswith("sent"))
    print(f"{records} records; {needing} need the LLM ({needing / records:.1%})")
    print(f"sent under strict privacy: {sent} ({sent / records:.1%} of records, {sent / needing:.1%} of those needing it)")
    for key, value in sorted(counts.items()):
        print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
