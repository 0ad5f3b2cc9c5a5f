"""The console's reads and writes in PostgreSQL: the queue, items, supplier search, decisions."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from domain.decisions import (
    SCOPE_CHOICES,
    DecisionTable,
    ReviewedPayee,
    build_decision,
    decision_scope,
    settles,
)
from schemas.decisions import ASPECT_OF_OUTCOME, ReviewDecision, decision_key

AGE_FILTERS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
}
SUPPLIER_SEARCH_LIMIT = 20
DECISION_SELECT = """
SELECT decision_id, normalized_name, source_system, place, outcome, supplier_id, supplier_name,
       excluded_supplier_ids, entity_type, subtype, reviewer, note, decided_at, supersedes,
       from_record_key, items_resolved, state, undone_by, undone_at
FROM review_decisions
"""


@dataclass(frozen=True)
class QueueFilter:
    reason: str | None = None
    source: str | None = None
    age: str | None = None  # a key of AGE_FILTERS: older than
    page: int = 1

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = ["status = 'open'"], []
        if self.reason:
            params.append([self.reason])
            clauses.append(f"reasons @> ${len(params)}::text[]")
        if self.source:
            params.append(self.source)
            clauses.append(f"source_system = ${len(params)}")
        if self.age in AGE_FILTERS:
            params.append(datetime.now(UTC) - AGE_FILTERS[self.age])
            clauses.append(f"queued_at < ${len(params)}")
        return " AND ".join(clauses), params


@dataclass
class QueuePage:
    items: list[dict[str, Any]]
    matching: int
    total_open: int
    by_reason: list[tuple[str, int]]
    by_source: list[tuple[str, int]]
    oldest_queued_at: datetime | None
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // self.page_size))


def _item(row: asyncpg.Record) -> dict[str, Any]:
    item = dict(row)
    if isinstance(item.get("result"), str):
        item["result"] = json.loads(item["result"])
    return item


async def queue_page(conn: asyncpg.Connection, filters: QueueFilter, page_size: int) -> QueuePage:
    where, params = filters.where()
    offset = (max(1, filters.page) - 1) * page_size
    rows = await conn.fetch(
        f"""
        SELECT record_key, priority, uncertainty, amount, currency, source_system, reasons, queued_at,
               result->'input'->>'payee_name' AS payee_name,
               result->'match'->>'supplier_name' AS best_supplier,
               result->'match'->>'decision' AS match_decision,
               (result->'match'->>'score')::float8 AS match_score,
               result->'classification'->>'entity_type' AS entity_type
        FROM review_items WHERE {where}
        ORDER BY priority DESC, queued_at, record_key
        LIMIT {int(page_size)} OFFSET {int(offset)}
        """,
        *params,
    )
    # One scan of the open items' (source, reasons) groups gives every count the page shows;
    # only an age filter needs a count of its own.
    groups = await conn.fetch(
        "SELECT source_system, reasons, count(*) AS n, min(queued_at) AS oldest FROM review_items "
        "WHERE status = 'open' GROUP BY source_system, reasons"
    )
    by_reason: dict[str, int] = {}
    by_source: dict[str, int] = {}
    for group in groups:
        by_source[group["source_system"]] = by_source.get(group["source_system"], 0) + group["n"]
        for reason in group["reasons"]:
            by_reason[reason] = by_reason.get(reason, 0) + group["n"]
    if filters.age in AGE_FILTERS:
        matching = await conn.fetchval(f"SELECT count(*) FROM review_items WHERE {where}", *params)
    else:
        matching = sum(
            group["n"]
            for group in groups
            if (not filters.reason or filters.reason in group["reasons"])
            and (not filters.source or group["source_system"] == filters.source)
        )
    oldest = min((group["oldest"] for group in groups), default=None)
    return QueuePage(
        items=[dict(row) for row in rows],
        matching=matching,
        total_open=sum(by_source.values()),
        by_reason=sorted(by_reason.items(), key=lambda pair: (-pair[1], pair[0])),
        by_source=sorted(by_source.items(), key=lambda pair: (-pair[1], pair[0])),
        oldest_queued_at=oldest,
        page=max(1, filters.page),
        page_size=page_size,
    )


async def review_item(conn: asyncpg.Connection, record_key: str) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM review_items WHERE record_key = $1", record_key)
    return _item(row) if row else None


async def next_open_item(conn: asyncpg.Connection, after_record_key: str | None = None) -> str | None:
    """The highest-priority open item (other than the one just decided)."""
    return await conn.fetchval(
        """
        SELECT record_key FROM review_items
        WHERE status = 'open' AND record_key IS DISTINCT FROM $1
        ORDER BY priority DESC, queued_at, record_key LIMIT 1
        """,
        after_record_key,
    )


async def scope_counts(conn: asyncpg.Connection, payee: ReviewedPayee) -> dict[str, int]:
    """Open items with this payee name that a decision of each scope would cover."""
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE source_system = $2 AND place IS NOT DISTINCT FROM $3) AS source_place,
               count(*) FILTER (WHERE source_system = $2) AS source,
               count(*) FILTER (WHERE place IS NOT DISTINCT FROM $3) AS place,
               count(*) AS everywhere
        FROM review_items WHERE status = 'open' AND normalized_name = $1
        """,
        payee.normalized_name,
        payee.source_system,
        payee.place,
    )
    return dict(row)


async def suppliers_by_id(conn: asyncpg.Connection, supplier_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM supplier_directory WHERE supplier_id = ANY($1::text[])", supplier_ids)
    return {row["supplier_id"]: dict(row) for row in rows}


_LIKE_SPECIALS = re.compile(r"([\\%_])")


async def trigram_schema(conn: asyncpg.Connection) -> str | None:
    return await conn.fetchval(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    )


async def search_suppliers(conn: asyncpg.Connection, query: str, trgm_schema: str | None) -> list[dict[str, Any]]:
    """Suppliers whose name (or alt name) contains every word of the query, most similar first;
    the supplier id itself also finds it."""
    words = [word for word in query.upper().split() if word][:8]
    if not words:
        return []
    patterns = ["%" + _LIKE_SPECIALS.sub(r"\\\1", word) + "%" for word in words]
    conditions = " AND ".join(f"search_text ILIKE ${i + 2}" for i in range(len(patterns)))
    rank = f"{trgm_schema}.similarity(name, $1) DESC," if trgm_schema else "length(name),"
    rows = await conn.fetch(
        f"""
        SELECT supplier_id, name, alt_name, city, state, category FROM supplier_directory
        WHERE ({conditions}) OR supplier_id = $1
        ORDER BY {rank} name, supplier_id
        LIMIT {SUPPLIER_SEARCH_LIMIT}
        """,
        query.strip(),
        *patterns,
    )
    return [dict(row) for row in rows]


def _decision_row(row: asyncpg.Record) -> dict[str, Any]:
    entry = dict(row)
    entry["decision_id"] = str(row["decision_id"])
    entry["supersedes"] = str(row["supersedes"]) if row["supersedes"] else None
    return entry


async def decision_history(
    conn: asyncpg.Connection, normalized_name: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    if normalized_name is None:
        rows = await conn.fetch(f"{DECISION_SELECT} ORDER BY decided_at DESC LIMIT {int(limit)}")
    else:
        rows = await conn.fetch(
            f"{DECISION_SELECT} WHERE normalized_name = $1 ORDER BY decided_at DESC LIMIT {int(limit)}",
            normalized_name,
        )
    return [_decision_row(row) for row in rows]


def _decision_from_message(message: str | dict[str, Any]) -> ReviewDecision:
    return ReviewDecision.model_validate_json(message) if isinstance(message, str) else ReviewDecision.model_validate(message)


async def decisions_in_force(conn: asyncpg.Connection, normalized_name: str) -> DecisionTable:
    rows = await conn.fetch(
        "SELECT message FROM review_decisions WHERE normalized_name = $1 AND state = 'in_force'", normalized_name
    )
    return DecisionTable(_decision_from_message(row["message"]) for row in rows)


Publish = Callable[[str, ReviewDecision | None], Awaitable[None]]


@dataclass
class DecisionOutcome:
    decision: ReviewDecision
    resolved: list[str] = field(default_factory=list)


class DecisionError(ValueError):
    """The action cannot become a decision (unknown item, unknown supplier, bad input)."""


RESOLVE_ITEMS_SQL = """
UPDATE review_items AS item
SET status = 'resolved', resolution = 'decision', decision_id = r.decision_id, resolved_by = r.reviewer,
    resolved_at = now()
FROM unnest($1::text[], $2::uuid[], $3::text[]) AS r(record_key, decision_id, reviewer)
WHERE item.record_key = r.record_key AND item.status = 'open'
"""


async def _resolve_settled_items(
    conn: asyncpg.Connection, names: list[str], new_decision: ReviewDecision | None = None
) -> list[str]:
    """Resolve the open items with these payee names that the decisions in force settle;
    returns their record keys. With ``new_decision``, only items in its scope, resolved with it
    (so that undoing it reopens them); otherwise each with the decision that answered its match
    (else its entity type)."""
    source = new_decision.source_system if new_decision else None
    place = new_decision.place if new_decision else None
    decisions = await conn.fetch(
        "SELECT message FROM review_decisions WHERE normalized_name = ANY($1::text[]) AND state = 'in_force'",
        names,
    )
    if not decisions:
        return []
    table = DecisionTable(_decision_from_message(row["message"]) for row in decisions)
    items = await conn.fetch(
        """
        SELECT record_key, normalized_name, source_system, place, reasons FROM review_items
        WHERE status = 'open' AND normalized_name = ANY($1::text[])
          AND ($2::text IS NULL OR source_system = $2) AND ($3::text IS NULL OR place IS NOT DISTINCT FROM $3)
        FOR UPDATE
        """,
        names,
        source,
        place,
    )
    settled: list[tuple[str, uuid.UUID, str]] = []
    for item in items:
        decided = table.find(item["normalized_name"], item["source_system"], item["place"])
        if settles(item["reasons"], decided):
            answer = new_decision or decided.match or decided.entity
            assert answer is not None  # settles() needs a decision for every reason
            settled.append((item["record_key"], uuid.UUID(answer.decision_id), answer.reviewer))
    if settled:
        await conn.execute(RESOLVE_ITEMS_SQL, *map(list, zip(*settled, strict=True)))
    return [key for key, _, _ in settled]


async def resolve_arrivals(conn: asyncpg.Connection, names: list[str]) -> int:
    """For the sink: items that arrive already settled (their record was processed before the
    decision reached the workers) are resolved on arrival."""
    return len(await _resolve_settled_items(conn, sorted(set(names))))


async def record_decision(
    conn: asyncpg.Connection,
    publish: Publish,
    *,
    record_key: str,
    outcome: str,
    scope: str,
    reviewer: str,
    supplier_id: str | None = None,
    entity_type: str | None = None,
    subtype: str | None = None,
    note: str | None = None,
) -> DecisionOutcome:
    """Store a reviewer's decision, publish it (acknowledged by the broker) and resolve the open
    items it settles, all or nothing: a failed publish rolls the transaction back."""
    try:
        return await _record_decision(conn, publish, record_key, outcome, scope, reviewer, supplier_id,
                                      entity_type, subtype, note)
    except asyncpg.UniqueViolationError:  # two reviewers decided the same payee at the same moment
        raise DecisionError("another decision on this payee was just taken; reload and try again") from None


async def _record_decision(
    conn: asyncpg.Connection,
    publish: Publish,
    record_key: str,
    outcome: str,
    scope: str,
    reviewer: str,
    supplier_id: str | None,
    entity_type: str | None,
    subtype: str | None,
    note: str | None,
) -> DecisionOutcome:
    async with conn.transaction():
        item = await conn.fetchrow(
            "SELECT normalized_name, source_system, place FROM review_items WHERE record_key = $1", record_key
        )
        if item is None:
            raise DecisionError("no such review item")
        payee = ReviewedPayee(item["normalized_name"], item["source_system"], item["place"])
        supplier_name = None
        if outcome in ("alias", "exclude"):
            supplier = await conn.fetchrow(
                "SELECT name FROM supplier_directory WHERE supplier_id = $1", supplier_id or ""
            )
            if supplier is None:
                raise DecisionError("unknown supplier")
            supplier_name = supplier["name"]
        if outcome not in ASPECT_OF_OUTCOME or scope not in SCOPE_CHOICES:
            raise DecisionError("unknown action or scope")
        source, place = decision_scope(payee, scope)
        key = decision_key(ASPECT_OF_OUTCOME[outcome], payee.normalized_name, source, place)
        in_force_row = await conn.fetchrow(
            "SELECT message FROM review_decisions WHERE decision_key = $1 AND state = 'in_force' FOR UPDATE", key
        )
        in_force = _decision_from_message(in_force_row["message"]) if in_force_row else None
        try:
            decision = build_decision(
                decision_id=str(uuid.uuid4()),
                payee=payee,
                outcome=outcome,
                scope=scope,
                reviewer=reviewer,
                decided_at=datetime.now(UTC),
                in_force=in_force,
                supplier_id=supplier_id,
                supplier_name=supplier_name,
                entity_type=entity_type,
                subtype=subtype,
                note=note,
            )
        except ValueError as error:  # pydantic's ValidationError is one; its text names no payee
            raise DecisionError(str(error).splitlines()[0]) from None
        if in_force is not None:
            await conn.execute(
                "UPDATE review_decisions SET state = 'superseded' WHERE decision_id = $1",
                uuid.UUID(in_force.decision_id),
            )
        await conn.execute(
            """
            INSERT INTO review_decisions (decision_id, decision_key, normalized_name, source_system, place,
                outcome, supplier_id, supplier_name, excluded_supplier_ids, entity_type, subtype, reviewer,
                note, decided_at, supersedes, from_record_key, message)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
            """,
            uuid.UUID(decision.decision_id),
            decision.key,
            decision.normalized_name,
            decision.source_system,
            decision.place,
            decision.outcome,
            decision.supplier_id,
            decision.supplier_name,
            list(decision.excluded_supplier_ids),
            decision.entity_type,
            decision.subtype,
            decision.reviewer,
            decision.note,
            decision.decided_at,
            uuid.UUID(decision.supersedes) if decision.supersedes else None,
            record_key,
            decision.model_dump_json(),
        )
        resolved = await _resolve_settled_items(conn, [decision.normalized_name], decision)
        await conn.execute(
            "UPDATE review_decisions SET items_resolved = $2 WHERE decision_id = $1",
            uuid.UUID(decision.decision_id),
            len(resolved),
        )
        await publish(decision.key, decision)
    return DecisionOutcome(decision, resolved)


async def undo_decision(conn: asyncpg.Connection, publish: Publish, decision_id: str, reviewer: str) -> int:
    """Undo a decision in force: a tombstone on its key, and the items it resolved reopen.
    Returns how many items reopened."""
    try:
        wanted = uuid.UUID(decision_id)
    except ValueError:
        raise DecisionError("no such decision") from None
    async with conn.transaction():
        row = await conn.fetchrow(
            "SELECT decision_key, state FROM review_decisions WHERE decision_id = $1 FOR UPDATE", wanted
        )
        if row is None or row["state"] != "in_force":
            raise DecisionError("only a decision in force can be undone")
        await conn.execute(
            "UPDATE review_decisions SET state = 'undone', undone_by = $2, undone_at = now() WHERE decision_id = $1",
            wanted,
            reviewer,
        )
        status = await conn.execute(
            """
            UPDATE review_items
            SET status = 'open', resolution = NULL, decision_id = NULL, resolved_by = NULL, resolved_at = NULL
            WHERE decision_id = $1 AND resolution = 'decision'
            """,
            wanted,
        )
        await publish(row["decision_key"], None)
    return int(status.rsplit(" ", 1)[-1])


async def review_metrics(conn: asyncpg.Connection) -> dict[str, Any]:
    """Backlog by reason, the oldest open item's age and the decisions of the last hour."""
    by_reason = await conn.fetch(
        "SELECT reason, count(*) AS n FROM review_items, unnest(reasons) AS reason WHERE status = 'open' GROUP BY reason"
    )
    oldest_age = await conn.fetchval(
        "SELECT extract(epoch FROM now() - min(queued_at)) FROM review_items WHERE status = 'open'"
    )
    last_hour = await conn.fetchval(
        "SELECT count(*) FROM review_decisions WHERE decided_at > now() - interval '1 hour'"
    )
    return {
        "backlog": {row["reason"]: row["n"] for row in by_reason},
        "oldest_age_s": float(oldest_age or 0.0),
        "decisions_last_hour": last_hour,
    }

