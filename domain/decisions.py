"""Reviewers' decisions applied to results, and the review queue's priority: plain functions.

A worker holds the decisions in force in a ``DecisionTable`` (fed from the compacted decisions
topic, see streams/decisions_table.py) and ``enrich`` asks it for the decisions that apply to a
payee before it matches. What a decision does:
  * alias: the payee is that supplier (match decided, score 1, method "reviewer");
  * no_match: the payee is no supplier (decision "none", method "reviewer");
  * exclude: never those suppliers; a best candidate that is excluded leaves the payee unmatched;
  * entity_type: the entity type and subtype are the reviewer's (confidence 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from domain.matching import Location
from domain.suppliers import Supplier
from schemas.decisions import ReviewDecision, decision_key
from schemas.events import ClassificationBlock, EnrichedPayee, MatchBlock

REVIEWER_CONFIDENCE = 1.0


def decision_place(state: str | None) -> str | None:
    """The place part of a decision's scope: the canonical state code, None when unknown."""
    return Location.of(None, state, None).state or None


@dataclass(frozen=True, slots=True)
class DecisionsInForce:
    """The decisions that apply to one payee, one per aspect."""

    match: ReviewDecision | None = None
    entity: ReviewDecision | None = None


NO_DECISIONS = DecisionsInForce()


class DecisionLookup(Protocol):
    def find(self, normalized_name: str, source_system: str | None, place: str | None) -> DecisionsInForce: ...


class DecisionTable:
    """Decisions in force by topic key; ``find`` picks the most specific scope per aspect."""

    def __init__(self, decisions: Iterable[ReviewDecision] = ()) -> None:
        self._by_key: dict[str, ReviewDecision] = {}
        self._ids: set[str] = set()
        for decision in decisions:
            self.put(decision.key, decision)

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._ids

    def put(self, key: str, decision: ReviewDecision | None) -> None:
        """Apply one topic record: a decision replaces the key's, None (a tombstone) undoes it."""
        previous = self._by_key.pop(key, None)
        if previous is not None:
            self._ids.discard(previous.decision_id)
        if decision is not None:
            self._by_key[key] = decision
            self._ids.add(decision.decision_id)

    def _most_specific(self, aspect: str, name: str, source: str | None, place: str | None) -> ReviewDecision | None:
        for scope_source, scope_place in ((source, place), (source, None), (None, place), (None, None)):
            found = self._by_key.get(decision_key(aspect, name, scope_source, scope_place))
            if found is not None:
                return found
        return None

    def find(self, normalized_name: str, source_system: str | None, place: str | None) -> DecisionsInForce:
        if not self._by_key:
            return NO_DECISIONS
        return DecisionsInForce(
            match=self._most_specific("match", normalized_name, source_system, place),
            entity=self._most_specific("entity", normalized_name, source_system, place),
        )


def apply_match_decision(
    block: MatchBlock, decision: ReviewDecision | None, alias_supplier: Supplier | None
) -> MatchBlock:
    """The match after a reviewer's decision. ``alias_supplier`` is the alias's supplier as the
    index holds it now; an alias to a supplier no longer in the index is not applied."""
    if decision is None:
        return block
    decided = {"method": "reviewer", "decision_id": decision.decision_id}
    if decision.outcome == "alias":
        if alias_supplier is None:
            return block
        agreed = block.supplier_id == alias_supplier.supplier_id and block.match_type != "none"
        return block.model_copy(
            update={
                "supplier_id": alias_supplier.supplier_id,
                "supplier_name": alias_supplier.name,
                "score": REVIEWER_CONFIDENCE,
                "match_type": block.match_type if agreed else "fuzzy",
                "decision": "matched",
                "reason": "reviewer_alias",
                **decided,
            }
        )
    if decision.outcome == "no_match":
        return block.model_copy(
            update={
                "supplier_id": None,
                "supplier_name": None,
                "match_type": "none",
                "decision": "none",
                "reason": "reviewer_no_supplier",
                **decided,
            }
        )
    if decision.outcome == "exclude":
        excluded = set(decision.excluded_supplier_ids)
        candidates = [c for c in block.candidates if c.supplier_id not in excluded]
        runner_up = block.runner_up if block.runner_up and block.runner_up.supplier_id not in excluded else None
        if block.supplier_id not in excluded:
            if len(candidates) == len(block.candidates) and runner_up == block.runner_up:
                return block
            return block.model_copy(update={"candidates": candidates, "runner_up": runner_up})
        return block.model_copy(
            update={
                "supplier_id": None,
                "supplier_name": None,
                "match_type": "none",
                "decision": "none",
                "reason": "reviewer_excluded_supplier",
                "candidates": candidates,
                "runner_up": runner_up,
                **decided,
            }
        )
    return block


def apply_entity_decision(block: ClassificationBlock, decision: ReviewDecision | None) -> ClassificationBlock:
    if decision is None or decision.entity_type is None:
        return block
    same_type = decision.entity_type == block.entity_type
    return block.model_copy(
        update={
            "entity_type": decision.entity_type,
            "subtype": decision.subtype,
            "sic_code": block.sic_code if same_type else None,
            "sic_description": block.sic_description if same_type else None,
            "confidence": REVIEWER_CONFIDENCE,
            "method": "reviewer",
            "reason": "reviewer_set_entity_type",
            "decision_id": decision.decision_id,
        }
    )


def match_uncertainty(match: MatchBlock) -> float:
    """0 = sure, 1 = a coin toss. Ambiguous: how close the runner-up came; matched: how far the
    score is from 1; none: how close the best candidate came."""
    if match.decision == "ambiguous":
        runner_up = match.runner_up.score if match.runner_up else 0.0
        return min(1.0, max(0.0, 1.0 - (match.score - runner_up)))
    if match.decision == "matched":
        return 1.0 - match.score
    return match.score


def review_uncertainty(result: EnrichedPayee) -> float:
    return round(max(match_uncertainty(result.match), 1.0 - result.classification.confidence), 4)


def review_priority(result: EnrichedPayee, default_amount: float) -> float:
    """Payment amount x uncertainty: a large payment to an unsure payee comes first."""
    amount = abs(result.input.amount) if result.input.amount is not None else Decimal(str(default_amount))
    return round(float(amount) * review_uncertainty(result), 4)


# Review reasons a match decision answers; the others are about the entity type.
MATCH_REASONS = frozenset({"ambiguous_match"})
ScopeChoice = str  # "source_place" | "source" | "place" | "everywhere"
SCOPE_CHOICES = ("source_place", "source", "place", "everywhere")


@dataclass(frozen=True, slots=True)
class ReviewedPayee:
    """What a decision is taken about: the review item's payee and where it came from."""

    normalized_name: str
    source_system: str
    place: str | None


def decision_scope(payee: ReviewedPayee, choice: ScopeChoice) -> tuple[str | None, str | None]:
    """(source_system, place) of a decision taken with the given scope choice."""
    if choice not in SCOPE_CHOICES:
        raise ValueError(f"unknown scope {choice!r}")
    source = payee.source_system if choice in ("source_place", "source") else None
    place = payee.place if choice in ("source_place", "place") else None
    return source, place


def build_decision(
    *,
    decision_id: str,
    payee: ReviewedPayee,
    outcome: str,
    scope: ScopeChoice,
    reviewer: str,
    decided_at: datetime,
    in_force: ReviewDecision | None = None,
    supplier_id: str | None = None,
    supplier_name: str | None = None,
    entity_type: str | None = None,
    subtype: str | None = None,
    note: str | None = None,
) -> ReviewDecision:
    """A reviewer's action as a decision; ``in_force`` is the decision it supersedes on its key.
    Exclusions accumulate: excluding a second supplier keeps the first excluded."""
    source, place = decision_scope(payee, scope)
    excluded: tuple[str, ...] = ()
    if outcome == "exclude":
        earlier = in_force.excluded_supplier_ids if in_force and in_force.outcome == "exclude" else ()
        excluded = tuple(dict.fromkeys([*earlier, supplier_id or ""]))
        supplier_id = supplier_name = None
    return ReviewDecision(
        decision_id=decision_id,
        normalized_name=payee.normalized_name,
        source_system=source,
        place=place,
        outcome=outcome,  # type: ignore[arg-type]
        supplier_id=supplier_id if outcome == "alias" else None,
        supplier_name=supplier_name if outcome == "alias" else None,
        excluded_supplier_ids=excluded,
        entity_type=entity_type if outcome == "entity_type" else None,  # type: ignore[arg-type]
        subtype=(subtype or None) if outcome == "entity_type" else None,
        reviewer=reviewer,
        note=(note or "").strip() or None,
        decided_at=decided_at,
        supersedes=in_force.decision_id if in_force else None,
    )


def settles(reasons: Iterable[str], decided: DecisionsInForce) -> bool:
    """Whether the decisions in force answer every question a review item asks. An exclusion
    answers nothing (another candidate may still be the one); an alias answers the entity type
    too, since the worker then classifies from the supplier's category."""
    reasons = set(reasons)
    match_decided = decided.match is not None and decided.match.outcome in ("alias", "no_match")
    entity_decided = decided.entity is not None or (decided.match is not None and decided.match.outcome == "alias")
    match_open = bool(reasons & MATCH_REASONS) and not match_decided
    entity_open = bool(reasons - MATCH_REASONS) and not entity_decided
    return not (match_open or entity_open)
