"""Matching payees to suppliers: ``index`` (structures, blocking, decision), ``features``
(evidence and weights), ``world`` (word commonness outside the list), ``snapshot`` (I/O)."""

from domain.matching.features import FEATURES, WEIGHTS, DefaultPlaces, Evidence, Location, QueryPlace
from domain.matching.index import (
    CandidateView,
    MatchResult,
    SupplierIndex,
    freeze_built_index,
    gc_paused,
    usable_alt_name,
)

__all__ = [
    "FEATURES",
    "WEIGHTS",
    "CandidateView",
    "DefaultPlaces",
    "Evidence",
    "Location",
    "MatchResult",
    "QueryPlace",
    "SupplierIndex",
    "freeze_built_index",
    "gc_paused",
    "usable_alt_name",
]
