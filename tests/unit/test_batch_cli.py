"""`payee-stream batch`: the agents' core over a CSV file, without Kafka."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURE_SUPPLIERS

REPO = Path(__file__).resolve().parent.parent.parent


def first_supplier(category: str) -> dict[str, str]:
    with FIXTURE_SUPPLIERS.open(newline="") as handle:
        return next(row for row in csv.DictReader(handle) if row["category"] == category)


def test_batch_writes_one_json_object_per_row(tmp_path):
    government = first_supplier("government")
    rows = [
        {"id": "1", "name": government["name"].upper(), "city": government["city"], "state": government["state"]},
        {"id": "2", "name": "AMERICAN LEGION", "city": "KETCHIKAN", "state": "AK"},
        {"id": "3", "name": "AMERICAN LEGION", "city": "", "state": ""},
        {"id": "4", "name": "SMITH, JOHN", "city": "", "state": ""},
        {"id": "5", "name": "", "city": "", "state": ""},
    ]
    source = tmp_path / "payees.csv"
    with source.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "name", "city", "state"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "out.jsonl"

    completed = subprocess.run(
        [sys.executable, "-m", "streams.cli", "batch", str(source), "--suppliers", str(FIXTURE_SUPPLIERS), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    results = {result["id"]: result for result in map(json.loads, out.read_text().splitlines())}
    assert list(results) == ["1", "2", "3", "4", "5"]
    for result in results.values():
        assert {"id", "entity_type", "confidence", "match"} <= set(result)
        assert {"supplier_id", "score", "match_type"} <= set(result["match"])

    assert results["1"]["match"]["supplier_id"] == government["supplier_id"]
    assert results["1"]["entity_type"] == "government"
    assert results["2"]["match"]["supplier_id"] == "EIN237026066"  # the Ketchikan post, by city
    assert results["3"]["match"]["supplier_id"] is None  # many posts, no location: not a guess
    assert results["3"]["match"]["decision"] == "ambiguous"
    assert results["4"]["entity_type"] == "individual" and results["4"]["match"]["supplier_id"] is None
    assert "error" in results["5"] and results["5"]["match"]["supplier_id"] is None
    assert "payees" in completed.stderr  # progress bar on stderr


def test_the_batch_weighs_the_sources_default_places():
    from domain.batch import process_payload
    from domain.matching import DefaultPlaces
    from tests.review_support import THRESHOLDS, fixture_index

    index = fixture_index()
    payload = {"source_system": "ap-ak", "source_record_id": "1", "payee_name": "AMERICAN LEGION"}
    anywhere = process_payload(payload, index, THRESHOLDS)
    in_alaska = process_payload(payload, index, THRESHOLDS, DefaultPlaces.parse("US", {"ap-ak": "US-AK"}))
    assert anywhere.enrichment is not None and in_alaska.enrichment is not None
    assert in_alaska.enrichment.match != anywhere.enrichment.match  # evidence of the default place
