"""The classification result shared by the rule layer and the LLM fallback."""

from __future__ import annotations

from dataclasses import dataclass

ENTITY_TYPES = ("individual", "business", "government", "unknown")
METHODS = ("rules", "model", "supplier", "llm", "degraded")


@dataclass(frozen=True, slots=True)
class Classification:
    entity_type: str
    subtype: str | None
    sic_code: str | None
    sic_description: str | None
    confidence: float
    method: str
    reason: str
    # The rules found an organisation or a government in the name itself (a legal form, organisation
    # or government words, a known brand) or in the matched supplier; a guess from the name's shape
    # or word statistics is not such evidence. Decides what may go to an external LLM (domain/privacy.py).
    organisation_evidence: bool = False

    def __post_init__(self) -> None:
        if self.entity_type not in ENTITY_TYPES:
            raise ValueError(f"unknown entity_type {self.entity_type!r}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} outside 0..1")
