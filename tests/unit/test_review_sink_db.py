"""What the sink writes for the review console, against the real PostgreSQL ``test`` database:
review items (replaced, reopened, resolved by later results or by decisions already in force)
and the supplier directory (upserts and tombstones, last word per batch)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from streams.db import connect
from streams.postgres_sink import ConsoleTopics, SinkWriter, rows_from_events
from streams.review import store
from streams.settings import Settings
from tests.conftest import TEST_DSN
from tests.review_support import fixture_index, payee, result_for

TOPICS = ConsoleTopics(review="t.review", suppliers="t.suppliers", default_amount=1000.0)


@dataclass
class Record:
    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int = 0
    offset: int = 0


async def write(settings: Settings, records: list[Record]) -> dict[str, int]:
    writer = SinkWriter(settings)
    try:
        await writer.migrate()
        return await writer.write(rows_from_events(records, "t.audit", "t.enriched", TOPICS))
    finally:
        await writer.close()


async def query(settings: Settings, sql: str, *args):
    conn = await connect(settings)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def supplier(supplier_id: str, name: str) -> Record:
    return Record("t.suppliers", json.dumps({"supplier_id": supplier_id, "name": name}).encode(), supplier_id.encode())


async def test_review_items_and_the_supplier_directory(pg_schema) -> None:
    settings = Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema)
    index = fixture_index()
    first = result_for(payee("1", amount="5000"), index)
    assert first.status == "review"
    later = first.model_copy(update={"event_id": str(uuid.uuid4()), "processed_at": first.processed_at + timedelta(seconds=5)})
    await write(settings, [
        Record("t.review", first.model_dump_json().encode()),
        Record("t.review", first.model_dump_json().encode()),  # a redelivery
        supplier("S1", "ACME"), supplier("S2", "BETA"),
        Record("t.suppliers", None, b"S2"),  # deleted in the same batch
        Record("t.suppliers", b"{}", b"S3"),  # not a supplier: set aside
    ])
    [item] = await query(settings, "SELECT * FROM review_items")
    assert (item["status"], item["reasons"], item["priority"]) == ("open", ["ambiguous_match"], 5000.0)
    assert [r["supplier_id"] for r in await query(settings, "SELECT * FROM supplier_directory")] == ["S1"]
    assert len(await query(settings, "SELECT * FROM sink_rejected_records")) == 1

    # A later result for the record that needs no review resolves the item.
    settled = later.model_copy(update={"status": "enriched", "review_reasons": []})
    await write(settings, [Record("t.enriched", settled.model_dump_json().encode())])
    [item] = await query(settings, "SELECT * FROM review_items")
    assert (item["status"], item["resolution"]) == ("resolved", "reprocessed")
    # A still later review result reopens it.
    reopened = later.model_copy(update={"event_id": str(uuid.uuid4()), "processed_at": later.processed_at + timedelta(seconds=5)})
    await write(settings, [Record("t.review", reopened.model_dump_json().encode())])
    [item] = await query(settings, "SELECT * FROM review_items")
    assert item["status"] == "open"


async def test_an_item_arriving_after_its_decision_is_resolved_on_arrival(pg_schema) -> None:
    settings = Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema)
    index = fixture_index()
    early = result_for(payee("1"), index)
    await write(settings, [Record("t.review", early.model_dump_json().encode()), supplier("EIN237026061", "AMERICAN LEGION")])
    published = []

    async def publish(key, decision):
        published.append((key, decision))

    conn = await connect(settings)
    try:
        decided = await store.record_decision(
            conn, publish, record_key=early.record_key, outcome="alias", scope="source",
            reviewer="ana", supplier_id="EIN237026061",
        )
    finally:
        await conn.close()
    assert decided.resolved == [early.record_key] and published[0][1] == decided.decision
    # Processed by a worker before the decision reached it: arrives in review, is resolved at once.
    late = result_for(payee("2"), index)
    written = await write(settings, [Record("t.review", late.model_dump_json().encode())])
    assert written["review_items_settled_on_arrival"] == 1
    [row] = await query(settings, "SELECT status, decision_id::text FROM review_items WHERE record_key = $1", late.record_key)
    assert (row["status"], row["decision_id"]) == ("resolved", decided.decision.decision_id)


async def test_a_place_decision_on_a_placeless_item_settles_placeless_items_only(pg_schema) -> None:
    settings = Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema)
    index = fixture_index()
    placeless, in_alaska = result_for(payee("1", state=None), index), result_for(payee("2", state="AK"), index)
    assert placeless.status == in_alaska.status == "review"
    await write(settings, [Record("t.review", r.model_dump_json().encode()) for r in (placeless, in_alaska)])

    async def publish(key, decision):
        pass

    conn = await connect(settings)
    try:
        reviewed = store.ReviewedPayee(placeless.normalized_name, "ap-east", None)
        counts = await store.scope_counts(conn, reviewed)
        assert (counts["place"], counts["source_place"], counts["everywhere"]) == (1, 1, 2)
        decided = await store.record_decision(
            conn, publish, record_key=placeless.record_key, outcome="no_match", scope="place", reviewer="ana",
        )
    finally:
        await conn.close()
    assert decided.resolved == [placeless.record_key]
    [row] = await query(settings, "SELECT status FROM review_items WHERE record_key = $1", in_alaska.record_key)
    assert row["status"] == "open"


async def test_undo_reopens_what_the_remaining_decisions_no_longer_settle(pg_schema) -> None:
    settings = Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema)
    index = fixture_index()
    first, second = result_for(payee("1"), index), result_for(payee("2"), index)
    assert first.status == second.status == "review"
    chosen = first.match.runner_up.supplier_id
    await write(settings, [*(Record("t.review", r.model_dump_json().encode()) for r in (first, second)), supplier(chosen, "AMERICAN LEGION")])

    async def publish(key, decision):
        pass

    async def item_states():
        rows = await query(settings, "SELECT record_key, status, decision_id::text FROM review_items ORDER BY record_key")
        return [(row["record_key"], row["status"], row["decision_id"]) for row in rows]

    conn = await connect(settings)
    try:
        wide = await store.record_decision(conn, publish, record_key=first.record_key, outcome="no_match",
                                           scope="everywhere", reviewer="ana")
        assert sorted(wide.resolved) == [first.record_key, second.record_key]
        # A narrower alias resolves nothing new (both are resolved); the credit stays with the wide one.
        narrow = await store.record_decision(conn, publish, record_key=second.record_key, outcome="alias",
                                             scope="source_place", reviewer="bo", supplier_id=chosen)
        assert narrow.resolved == []
        alias_id, wide_id = narrow.decision.decision_id, wide.decision.decision_id
        assert await item_states() == [(first.record_key, "resolved", wide_id), (second.record_key, "resolved", wide_id)]
        # Undoing the wide decision leaves both settled by the alias, now credited to it.
        assert await store.undo_decision(conn, publish, wide_id, "ana") == 0
        assert await item_states() == [(first.record_key, "resolved", alias_id), (second.record_key, "resolved", alias_id)]
        # Undoing the alias too reopens both: nothing settles them any more.
        assert await store.undo_decision(conn, publish, alias_id, "bo") == 2
        assert await item_states() == [(first.record_key, "open", None), (second.record_key, "open", None)]
    finally:
        await conn.close()


async def test_review_items_keep_the_newest_result_by_order_key_not_processing_time(pg_schema) -> None:
    settings = Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema)
    index = fixture_index()
    newer = result_for(payee("1"), index)
    assert newer.status == "review"
    # The record's earlier input (a lower source offset), processed later: a late redelivery.
    older = newer.model_copy(update={
        "event_id": str(uuid.uuid4()), "result_version": "older", "order_key": newer.order_key - 1,
        "processed_at": newer.processed_at + timedelta(minutes=5),
    })
    await write(settings, [Record("t.review", newer.model_dump_json().encode())])
    await write(settings, [Record("t.review", older.model_dump_json().encode())])
    [item] = await query(settings, "SELECT event_id::text, order_key, status FROM review_items")
    assert (item["event_id"], item["order_key"], item["status"]) == (newer.event_id, newer.order_key, "open")
    # Nor does an older result that needed no review settle the newer item.
    settled_older = older.model_copy(update={"status": "enriched", "review_reasons": []})
    await write(settings, [Record("t.enriched", settled_older.model_dump_json().encode())])
    [item] = await query(settings, "SELECT status FROM review_items")
    assert item["status"] == "open"
    # A newer input's result replaces the item even when processed earlier (another worker's clock).
    newest = newer.model_copy(update={
        "event_id": str(uuid.uuid4()), "result_version": "newest", "order_key": newer.order_key + 1,
        "processed_at": newer.processed_at - timedelta(minutes=5),
    })
    await write(settings, [Record("t.review", newest.model_dump_json().encode())])
    [item] = await query(settings, "SELECT event_id::text, result_version FROM review_items")
    assert (item["event_id"], item["result_version"]) == (newest.event_id, "newest")
