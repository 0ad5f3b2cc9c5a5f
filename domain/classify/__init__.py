"""Payee classification: entity type, subtype, SIC industry, confidence and reason.

`classify_payee` is the fast deterministic path (rules, census names, the matched supplier's own
category); `LlmClassifier` is the optional fallback for low-confidence payees.
"""

from __future__ import annotations

import functools

from .llm import LlmClassifier, LlmConfig, LlmStats
from .result import Classification
from .rules import RULES_VERSION, classify_text
from .sic import is_valid_sic, sic_description
from .supplier import classify_from_supplier

# Rule results below this confidence are worth an LLM call.
LLM_CONFIDENCE_THRESHOLD = 0.7


MAX_NAME_CHARS = 300
# The rules' reading is a pure function of the name, and a payee recurs on every payment.
_rules_reading = functools.lru_cache(maxsize=1 << 14)(classify_text)


def classify_payee(
    name: str, supplier_category: str | None = None, supplier_code: str | None = None
) -> Classification:
    """Classify one payee name; a matched supplier's category, when given, decides the entity type."""
    # Payee names are at most a few hundred characters; a cap keeps hostile input cheap.
    text_result = _rules_reading(name[:MAX_NAME_CHARS])
    if supplier_category:
        supplier_result = classify_from_supplier(supplier_category, supplier_code, text_result)
        if supplier_result is not None:
            return supplier_result
    return text_result


__all__ = [
    "Classification",
    "LLM_CONFIDENCE_THRESHOLD",
    "LlmClassifier",
    "LlmConfig",
    "LlmStats",
    "RULES_VERSION",
    "classify_payee",
    "is_valid_sic",
    "sic_description",
]
