"""Reviewers' decisions applied to results (domain/decisions.py through domain/pipeline.enrich)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from domain.decisions import (
    UNKNOWN_PLACE,
    DecisionTable,
    ReviewedPayee,
    apply_match_decision,
    build_decision,
    decision_place,
    review_priority,
    settles,
    settling_decision,
)
from domain.outcome import result_decisions
from schemas.decisions import ReviewDecision, decision_key
from schemas.events import MatchBlock, MatchCandidate, RunnerUp
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


def test_a_decided_match_is_versioned_as_decided(index) -> None:
    # The matcher's block comes from the match cache with its JSON; the decision makes another block.
    before = result_for(payee("1"), index)
    alias = decide("alias", result=before, supplier_id=before.match.runner_up.supplier_id, supplier_name="AMERICAN LEGION")
    # Excluding a candidate that is not the best changes the candidates alone: still another version.
    others = [c.supplier_id for c in before.match.candidates if c.supplier_id != before.match.supplier_id]
    exclusion = decide("exclude", result=before, supplier_id=others[-1])
    for decided in (alias, decide("no_match", result=before), exclusion):
        after = result_for(payee("2"), index, DecisionTable([decided]))
        assert after.match.json_bytes == after.match.model_dump_json().encode() != before.match.json_bytes
        assert after.result_version != before.result_version


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


def test_exclusions_accumulate_and_an_excluded_best_goes_to_review(index) -> None:
    base = result_for(payee("1"), index)
    best, runner_up = base.match.supplier_id, base.match.runner_up.supplier_id
    first = decide("exclude", result=base, supplier_id=runner_up)
    second = decide("exclude", result=base, supplier_id=best, in_force=first)
    assert second.excluded_supplier_ids == (runner_up, best) and second.supersedes == first.decision_id
    after = result_for(payee("2"), index, DecisionTable([second]))
    # "Not this one" is no "no supplier": the payee stays in review, best and runner-up gone.
    assert after.status == "review" and "ambiguous_match" in after.review_reasons
    assert (after.match.decision, after.match.reason) == ("ambiguous", "reviewer_excluded_best")
    assert after.match.supplier_id not in (best, runner_up)
    assert all(c.supplier_id not in (best, runner_up) for c in after.match.candidates)


def test_excluding_the_best_reselects_among_the_rest_with_the_matchers_thresholds() -> None:
    def candidate(supplier_id: str, score: float) -> MatchCandidate:
        return MatchCandidate(supplier_id=supplier_id, supplier_name=supplier_id, score=score)

    block = MatchBlock(
        supplier_id="A", supplier_name="A", score=0.5, match_type="fuzzy", decision="ambiguous",
        runner_up=RunnerUp(supplier_id="B", supplier_name="B", score=0.45), reason="unsure",
        candidates=[candidate("A", 0.5), candidate("B", 0.45), candidate("C", 0.01)],
    )
    exclude = ReviewDecision(decision_id="9", normalized_name="X", outcome="exclude", excluded_supplier_ids=("A",), reviewer="a", decided_at=NOW)
    decisive = apply_match_decision(block, exclude, None, threshold=0.4, margin=0.05)
    assert (decisive.supplier_id, decisive.decision, decisive.runner_up.supplier_id) == ("B", "matched", "C")
    assert decisive.method == "reviewer" and decisive.decision_id == "9"
    # Not decisive (below the threshold), or no thresholds known: review, never a confident none.
    for unsure in (apply_match_decision(block, exclude, None, threshold=0.85, margin=0.05),
                   apply_match_decision(block, exclude, None)):
        assert (unsure.supplier_id, unsure.decision, unsure.reason) == ("B", "ambiguous", "reviewer_excluded_best")
    everything = exclude.model_copy(update={"excluded_supplier_ids": ("A", "B", "C")})
    nothing_left = apply_match_decision(block, everything, None, threshold=0.4, margin=0.05)
    assert (nothing_left.supplier_id, nothing_left.decision, nothing_left.candidates) == (None, "ambiguous", [])


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


def test_a_place_decision_about_a_placeless_payee_applies_to_placeless_payees_only(index) -> None:
    placeless = result_for(payee("1", state=None), index)
    for scope in ("place", "source_place"):
        decision = decide("no_match", scope=scope, result=placeless)
        assert decision.place == UNKNOWN_PLACE
        table = DecisionTable([decision])
        assert result_for(payee("2", state="TX"), index, table).match.method == "matcher"
        assert result_for(payee("3", state=None), index, table).match.reason == "reviewer_no_supplier"
    # The wildcard is still everywhere.
    everywhere = DecisionTable([decide("no_match", scope="everywhere", result=placeless)])
    assert result_for(payee("4", state="TX"), index, everywhere).match.reason == "reviewer_no_supplier"


def test_exclusions_of_every_scope_add_up_and_hide_no_wider_alias(index) -> None:
    base = result_for(payee("1"), index)
    best, runner_up = base.match.supplier_id, base.match.runner_up.supplier_id
    alias = decide("alias", scope="everywhere", result=base, supplier_id=runner_up)
    narrow_exclusion = decide("exclude", scope="source_place", result=base, supplier_id=best)
    table = DecisionTable([alias, narrow_exclusion])
    # The narrow exclusion does not hide the wider alias to another supplier.
    assert table.find(base.normalized_name, "ap-east", "AK").match == alias
    assert result_for(payee("2"), index, table).match.supplier_id == runner_up
    # An exclusion of the alias's supplier (at any scope) drops the alias; the exclusions add up.
    wide_exclusion = decide("exclude", scope="source", result=base, supplier_id=runner_up)
    table.put(wide_exclusion.key, wide_exclusion)
    decided = table.find(base.normalized_name, "ap-east", "AK").match
    assert decided.outcome == "exclude" and set(decided.excluded_supplier_ids) == {best, runner_up}
    after = result_for(payee("3"), index, table)
    assert after.status == "review" and after.match.supplier_id not in (best, runner_up)
    # Elsewhere only the alias applies.
    assert result_for(payee("4", source="ap-west"), index, table).match.supplier_id == runner_up


def test_an_item_is_credited_to_the_decision_that_settles_it() -> None:
    no_match = ReviewDecision(decision_id="1", normalized_name="X", outcome="no_match", reviewer="a", decided_at=NOW)
    entity = ReviewDecision(decision_id="2", normalized_name="X", outcome="entity_type", entity_type="business", reviewer="b", decided_at=NOW)
    decided = DecisionTable([no_match, entity]).find("X", "s", None)
    assert settling_decision(["unknown_entity_type"], decided, preferred=no_match) == entity  # no_match answers nothing here
    assert settling_decision(["ambiguous_match", "unknown_entity_type"], decided, preferred=entity) == entity
    assert settling_decision(["ambiguous_match", "unknown_entity_type"], decided) == no_match
    assert settling_decision(["ambiguous_match"], DecisionTable([entity]).find("X", "s", None)) is None
