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

    def __post_init__(self) -> None:
        if self.entity_type not in ENTITY_TYPES:
            raise ValueError(f"unknown entity_type {self.entity_type!r}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} outside 0..1")
