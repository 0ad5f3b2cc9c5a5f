"""The rules version follows the decision logic: code, data, thresholds and default places."""

from __future__ import annotations

import shutil

from domain import pipeline
from domain.classify import RULES_VERSION
from domain.matching import DefaultPlaces, SupplierIndex
from domain.pipeline import Thresholds, current_versions

THRESHOLDS = Thresholds(review=0.7, llm=0.6)


def rules_version(index: SupplierIndex, thresholds: Thresholds = THRESHOLDS) -> str:
    return current_versions(index, "1.0", thresholds).rules


def test_rules_version_is_stable_and_names_the_rules_release():
    assert rules_version(SupplierIndex()) == rules_version(SupplierIndex())
    assert rules_version(SupplierIndex()).startswith(f"{RULES_VERSION}+")


def test_thresholds_are_part_of_the_rules_version():
    baseline = rules_version(SupplierIndex())
    assert rules_version(SupplierIndex(), Thresholds(review=0.8, llm=0.6)) != baseline
    assert rules_version(SupplierIndex(match_threshold=0.9)) != baseline
    assert rules_version(SupplierIndex(ambiguity_margin=0.1)) != baseline


def test_default_places_are_part_of_the_rules_version():
    # They are match evidence (a payee's likely state and country), so they change results.
    def with_places(places: DefaultPlaces) -> str:
        return current_versions(SupplierIndex(), "1.0", THRESHOLDS, places).rules

    baseline = with_places(DefaultPlaces.parse("US", {}))
    assert with_places(DefaultPlaces.parse("US", {})) == baseline
    assert with_places(DefaultPlaces.parse("US", {"ap-scottsdale": "US-AZ"})) != baseline
    assert with_places(DefaultPlaces.parse("CA", {})) != baseline


def test_a_change_to_the_domain_code_changes_the_rules_version(tmp_path, monkeypatch):
    copy = tmp_path / "domain"
    shutil.copytree(pipeline._DOMAIN_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(pipeline, "_DOMAIN_ROOT", copy)
    pipeline._decision_logic_digest.cache_clear()
    before = rules_version(SupplierIndex())
    weights = copy / "matching" / "features.py"
    weights.write_text(weights.read_text().replace("WEIGHTS = (", "WEIGHTS = (  # refitted", 1))
    pipeline._decision_logic_digest.cache_clear()
    try:
        assert rules_version(SupplierIndex()) != before
    finally:
        monkeypatch.undo()
        pipeline._decision_logic_digest.cache_clear()
