"""A reviewer's decision, as published to the compacted ``payees.decisions`` topic.

Contract:
  * key: ``decision_key(aspect, normalized_name, source_system, place)``, a JSON array
    ``[aspect, source_system or "*", place or "*", normalized_name]``. One key holds the current
    decision of one aspect (``match`` or ``entity``) for one payee name in one scope, so
    compaction keeps exactly the decisions in force.
  * value: a ``ReviewDecision`` (JSON). A newer value on the same key supersedes the older one
    (``supersedes`` names it); a tombstone (null value) undoes the key's decision.
  * scope: ``source_system`` None means every source system, ``place`` (a canonical state code)
    None means everywhere. Workers apply the most specific decision in force: source and place,
    then source, then place, then neither.
  * ``decision_id`` is a UUID, the id results carry in ``match.decision_id`` /
    ``classification.decision_id`` when the decision settled them (method ``reviewer``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import EntityType

DECISION_SCHEMA_VERSION = 1
ANY_SCOPE = "*"

DecisionAspect = Literal["match", "entity"]
# alias: this payee is that supplier; no_match: this payee is no supplier at all;
# exclude: never these suppliers for this payee; entity_type: the payee's entity type and subtype.
DecisionOutcome = Literal["alias", "no_match", "exclude", "entity_type"]
ASPECT_OF_OUTCOME: dict[str, DecisionAspect] = {
    "alias": "match",
    "no_match": "match",
    "exclude": "match",
    "entity_type": "entity",
}


def decision_key(aspect: str, normalized_name: str, source_system: str | None, place: str | None) -> str:
    return json.dumps(
        [aspect, source_system or ANY_SCOPE, place or ANY_SCOPE, normalized_name],
        separators=(",", ":"),
        ensure_ascii=False,
    )


class ReviewDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = DECISION_SCHEMA_VERSION
    decision_id: str
    normalized_name: str = Field(min_length=1)
    source_system: str | None = None
    place: str | None = None
    outcome: DecisionOutcome
    supplier_id: str | None = None
    supplier_name: str | None = None
    excluded_supplier_ids: tuple[str, ...] = ()
    entity_type: EntityType | None = None
    subtype: str | None = None
    reviewer: str
    note: str | None = None
    decided_at: datetime
    supersedes: str | None = None

    @model_validator(mode="after")
    def _outcome_has_its_fields(self) -> ReviewDecision:
        if self.outcome == "alias" and not self.supplier_id:
            raise ValueError("an alias names its supplier")
        if self.outcome == "exclude" and not self.excluded_supplier_ids:
            raise ValueError("an exclusion names the suppliers it excludes")
        if self.outcome == "entity_type" and self.entity_type is None:
            raise ValueError("an entity-type decision names the entity type")
        return self

    @property
    def aspect(self) -> DecisionAspect:
        return ASPECT_OF_OUTCOME[self.outcome]

    @property
    def key(self) -> str:
        return decision_key(self.aspect, self.normalized_name, self.source_system, self.place)
