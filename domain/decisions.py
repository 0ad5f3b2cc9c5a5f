"""Reviewers' decisions applied to results, and the review queue's priority: plain functions.

A worker holds the decisions in force in a ``DecisionTable`` (fed from the compacted decisions
topic, see streams/decisions_table.py) and ``enrich`` asks it for the decisions that apply to a
payee before it matches. What a decision does:
  * alias: the payee is that supplier (match decided, score 1, method "reviewer");
  * no_match: the payee is no supplier (decision "none", method "reviewer");
  * exclude: never those suppliers; when the best candidate is excluded, the next one is matched
    only if it is decisive by itself, else the payee goes to review (never a confident "none");
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
from schemas.events import ClassificationBlock, EnrichedPayee, MatchBlock, RunnerUp

REVIEWER_CONFIDENCE = 1.0
# The place of a decision taken with a place scope about a payee whose place is unknown: it
# applies to payees with no known place only, never everywhere (which is a place of None).
UNKNOWN_PLACE = "unknown"


def decision_place(state: str | None) -> str | None:
    """The payee's place for decision lookups: the canonical state code, None when unknown."""
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
    """Decisions in force by topic key; ``find`` picks the most specific scope per aspect, and
    adds up the exclusions of every scope."""

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

    def _in_scopes(self, aspect: str, name: str, source: str | None, place: str | None) -> list[ReviewDecision]:
        """The aspect's decisions that apply, most specific scope first."""
        place = place or UNKNOWN_PLACE
        scopes = ((source, place), (source, None), (None, place), (None, None))
        found = (self._by_key.get(decision_key(aspect, name, *scope)) for scope in scopes)
        return [decision for decision in found if decision is not None]

    def _match(self, name: str, source: str | None, place: str | None) -> ReviewDecision | None:
        """Exclusions are an aspect of their own: those of every applicable scope add up, and a
        narrower one hides no wider alias or no-match. The most specific alias or no-match whose
        supplier is not excluded decides; without one, the exclusions apply (as one decision,
        the most specific exclusion's, naming them all)."""
        decisions = self._in_scopes("match", name, source, place)
        exclusions = [decision for decision in decisions if decision.outcome == "exclude"]
        excluded = tuple(dict.fromkeys(i for decision in exclusions for i in decision.excluded_supplier_ids))
        for decision in decisions:
            if decision.outcome == "no_match" or (decision.outcome == "alias" and decision.supplier_id not in excluded):
                return decision
        if not exclusions:
            return None
        return exclusions[0].model_copy(update={"excluded_supplier_ids": excluded})

    def find(self, normalized_name: str, source_system: str | None, place: str | None) -> DecisionsInForce:
        if not self._by_key:
            return NO_DECISIONS
        entity = self._in_scopes("entity", normalized_name, source_system, place)
        return DecisionsInForce(
            match=self._match(normalized_name, source_system, place),
            entity=entity[0] if entity else None,
        )


def apply_match_decision(
    block: MatchBlock,
    decision: ReviewDecision | None,
    alias_supplier: Supplier | None,
    threshold: float | None = None,
    margin: float | None = None,
) -> MatchBlock:
    """The match after a reviewer's decision. ``alias_supplier`` is the alias's supplier as the
    index holds it now; an alias to a supplier no longer in the index is not applied.
    ``threshold`` and ``margin`` are the matcher's (``SupplierIndex.match_threshold`` and
    ``ambiguity_margin``), for choosing again when an exclusion removes the best candidate."""
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
        return _without_excluded(block, set(decision.excluded_supplier_ids), decided, threshold, margin)
    return block


def _without_excluded(
    block: MatchBlock, excluded: set[str], decided: dict[str, str], threshold: float | None, margin: float | None
) -> MatchBlock:
    """The match once the excluded suppliers are out. An excluded best candidate is no evidence
    that the payee is no supplier: the best remaining candidate is matched only when it clears
    the matcher's threshold and margin by its own score (the scores are not renormalised, so this
    stays conservative); otherwise, or without the matcher's thresholds, the payee goes to review."""
    candidates = [c for c in block.candidates if c.supplier_id not in excluded]
    runner_up = block.runner_up if block.runner_up and block.runner_up.supplier_id not in excluded else None
    if block.supplier_id not in excluded:
        if len(candidates) == len(block.candidates) and runner_up == block.runner_up:
            return block
        return block.model_copy(update={"candidates": candidates, "runner_up": runner_up})
    best = candidates[0] if candidates else None
    second = candidates[1] if len(candidates) > 1 else None
    runner_up = RunnerUp(supplier_id=second.supplier_id, supplier_name=second.supplier_name, score=second.score) if second else None
    decisive = (
        best is not None
        and threshold is not None
        and margin is not None
        and best.score >= threshold
        and best.score - (second.score if second else 0.0) >= margin
    )
    return block.model_copy(
        update={
            "supplier_id": best.supplier_id if best else None,
            "supplier_name": best.supplier_name if best else None,
            "score": best.score if best else 0.0,
            "match_type": "fuzzy" if best else "none",
            "decision": "matched" if decisive else "ambiguous",
            "reason": "reviewer_excluded_best_matched_next" if decisive else "reviewer_excluded_best",
            "evidence": best.evidence if best else [],
            "candidates": candidates,
            "runner_up": runner_up,
            **decided,
        }
    )


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
    """(source_system, place) of a decision taken with the given scope choice; a place scope of
    a payee with no known place is ``UNKNOWN_PLACE``, never the wildcard."""
    if choice not in SCOPE_CHOICES:
        raise ValueError(f"unknown scope {choice!r}")
    source = payee.source_system if choice in ("source_place", "source") else None
    place = (payee.place or UNKNOWN_PLACE) if choice in ("source_place", "place") else None
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


def settling_decision(
    reasons: Iterable[str], decided: DecisionsInForce, preferred: ReviewDecision | None = None
) -> ReviewDecision | None:
    """The decision that settles a review item, None when the decisions in force do not: the one
    answering its match question, else its entity-type question; ``preferred`` (a decision just
    taken) when it is one of those answering."""
    if not settles(reasons, decided):
        return None
    reasons = set(reasons)
    answering = []
    if reasons & MATCH_REASONS:
        answering.append(decided.match)
    if reasons - MATCH_REASONS:
        answering.append(decided.entity or decided.match)
    answers = [decision for decision in answering if decision is not None] or [
        decision for decision in (decided.match, decided.entity) if decision is not None
    ]
    if preferred is not None and any(answer.decision_id == preferred.decision_id for answer in answers):
        return preferred
    return answers[0] if answers else None
