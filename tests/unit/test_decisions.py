"""Reviewers' decisions applied to results (domain/decisions.py through domain/pipeline.enrich)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.decisions import (
    DecisionTable,
    ReviewedPayee,
    build_decision,
    decision_place,
    review_priority,
    settles,
)
from domain.outcome import result_decisions
from schemas.decisions import ReviewDecision, decision_key
from streams.decisions_table import apply_decision_record
from tests.review_support import fixture_index, payee, result_for

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def index():
    return fixture_index()


def decide(outcome: str, scope: str = "source_place", in_force: ReviewDecision | None = None, **fields) -> ReviewDecision:
    result = fields.pop("result")
    subject = ReviewedPayee(result.normalized_name, result.input.source_system, decision_place(result.input.state))
    return build_decision(
        decision_id=str(uuid.uuid4()), payee=subject, outcome=outcome, scope=scope, reviewer="ana",
        decided_at=NOW, in_force=in_force, **fields,
    )


def test_an_alias_decides_the_match_and_the_result_leaves_review(index) -> None:
    before = result_for(payee("1"), index)
    assert before.status == "review" and before.match.decision == "ambiguous"
    chosen = before.match.runner_up.supplier_id
    alias = decide("alias", result=before, supplier_id=chosen, supplier_name="AMERICAN LEGION")
    after = result_for(payee("2"), index, DecisionTable([alias]))
    assert after.match.method == "reviewer" and after.match.decision_id == alias.decision_id
    assert (after.match.supplier_id, after.match.decision, after.match.score) == (chosen, "matched", 1.0)
    assert after.status == "enriched" and after.review_reasons == []
    # Audited: the matched event says who decided.
    matched = next(e for e in result_decisions(after, sent_to_llm=False) if e.action == "matched")
    assert matched.outcome["method"] == "reviewer" and matched.outcome["decision_id"] == alias.decision_id


def test_scope_decides_where_a_decision_applies(index) -> None:
    base = result_for(payee("1"), index)
    alias = decide("alias", result=base, supplier_id="EIN237026064")
    table = DecisionTable([alias])
    assert result_for(payee("3", source="ap-west"), index, table).match.method == "matcher"
    assert result_for(payee("4", state="TX"), index, table).match.method == "matcher"
    assert result_for(payee("5", state="Alaska"), index, table).match.method == "reviewer"  # same place
    everywhere = decide("no_match", scope="everywhere", result=base)
    table.put(everywhere.key, everywhere)
    # The most specific decision wins where both apply; the wide one elsewhere.
    assert result_for(payee("6"), index, table).match.reason == "reviewer_alias"
    assert result_for(payee("7", source="ap-west", state=None), index, table).match.reason == "reviewer_no_supplier"


def test_exclusions_accumulate_and_an_excluded_best_leaves_the_payee_unmatched(index) -> None:
    base = result_for(payee("1"), index)
    best, runner_up = base.match.supplier_id, base.match.runner_up.supplier_id
    first = decide("exclude", result=base, supplier_id=runner_up)
    second = decide("exclude", result=base, supplier_id=best, in_force=first)
    assert second.excluded_supplier_ids == (runner_up, best) and second.supersedes == first.decision_id
    after = result_for(payee("2"), index, DecisionTable([second]))
    assert after.match.supplier_id is None and after.match.reason == "reviewer_excluded_supplier"
    assert after.match.runner_up is None


def test_an_entity_type_override(index) -> None:
    base = result_for(payee("1"), index)
    override = decide("entity_type", result=base, entity_type="government", subtype="veterans")
    after = result_for(payee("2"), index, DecisionTable([override]))
    cls = after.classification
    assert (cls.entity_type, cls.subtype, cls.method, cls.decision_id) == ("government", "veterans", "reviewer", override.decision_id)
    assert after.match.method == "matcher"  # the match is still the matcher's (and still ambiguous)


def test_an_alias_to_a_supplier_no_longer_indexed_is_not_applied(index) -> None:
    base = result_for(payee("1"), index)
    alias = decide("alias", result=base, supplier_id="GONE-1")
    assert result_for(payee("2"), index, DecisionTable([alias])).match.method == "matcher"


def test_topic_records_tombstones_and_bad_values() -> None:
    table = DecisionTable()
    decision = ReviewDecision(decision_id=str(uuid.uuid4()), normalized_name="X", outcome="no_match", reviewer="a", decided_at=NOW)
    assert apply_decision_record(table, decision.key.encode(), decision.model_dump_json().encode())
    assert decision.decision_id in table and len(table) == 1
    assert not apply_decision_record(table, b"other-key", decision.model_dump_json().encode())
    assert not apply_decision_record(table, decision.key.encode(), b"{not json")
    assert apply_decision_record(table, decision.key.encode(), None)
    assert decision.decision_id not in table and len(table) == 0


def test_decision_keys_are_unambiguous() -> None:
    assert decision_key("match", "A|B", None, "TX") != decision_key("match", "A", "B", "TX")
    assert decision_key("match", "A", None, None) == '["match","*","*","A"]'


def test_settles_needs_every_reason_answered() -> None:
    alias = ReviewDecision(decision_id="1", normalized_name="X", outcome="alias", supplier_id="S", reviewer="a", decided_at=NOW)
    entity = ReviewDecision(decision_id="2", normalized_name="X", outcome="entity_type", entity_type="business", reviewer="a", decided_at=NOW)
    exclude = ReviewDecision(decision_id="3", normalized_name="X", outcome="exclude", excluded_supplier_ids=("S",), reviewer="a", decided_at=NOW)
    table = DecisionTable([exclude])
    assert not settles(["ambiguous_match"], table.find("X", "s", None))
    table.put(alias.key, alias)
    assert settles(["ambiguous_match", "low_classification_confidence"], table.find("X", "s", None))
    only_entity = DecisionTable([entity])
    assert settles(["unknown_entity_type"], only_entity.find("X", "s", None))
    assert not settles(["ambiguous_match", "unknown_entity_type"], only_entity.find("X", "s", None))


def test_priority_is_amount_times_uncertainty(index) -> None:
    big, small, unknown = (result_for(payee(str(i), amount=a), index) for i, a in enumerate(["50000", "10", None]))
    assert review_priority(big, 1000) > review_priority(unknown, 1000) > review_priority(small, 1000)
    assert review_priority(unknown, 1000) == pytest.approx(1000 * review_priority(small, 1000) / 10)


def test_an_unknown_scope_or_incomplete_decision_is_refused() -> None:
    subject = ReviewedPayee("X", "s", None)
    with pytest.raises(ValueError):
        build_decision(decision_id="1", payee=subject, outcome="alias", scope="planet", reviewer="a", decided_at=NOW, supplier_id="S")
    with pytest.raises(ValueError):
        build_decision(decision_id="1", payee=subject, outcome="alias", scope="source", reviewer="a", decided_at=NOW)
