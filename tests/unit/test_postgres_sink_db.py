"""Migrations, the sink's SQL and the audit query against the real PostgreSQL ``test`` database,
each test in a schema of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from streams.db import MigrationError, audit_history, load_migrations, migrate
from streams.postgres import connect
from streams.postgres_sink import RejectedRow, SinkBatch, SinkWriter, audit_rows, result_row
from streams.settings import Settings
from tests.conftest import TEST_DSN
from tests.unit.test_postgres_sink import START, make_audit, make_result



@pytest.fixture
async def writer(pg_schema: str) -> AsyncIterator[SinkWriter]:
    sink_writer = SinkWriter(Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema))
    await sink_writer.migrate()
    yield sink_writer
    await sink_writer.close()


async def fetch(schema: str, sql: str) -> list[asyncpg.Record]:
    conn = await connect(Settings(postgres_dsn=TEST_DSN, postgres_schema=schema))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def test_migrations_apply_once_even_when_run_concurrently(pg_schema):
    settings = Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema)
    conns = [await connect(settings) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(conn, pg_schema) for conn in conns))
        assert sorted(len(names) for names in applied) == [0, 0, len(load_migrations())]
        async with conns[0].transaction(readonly=True):  # up to date: no DDL, no rights needed
            assert await migrate(conns[0], pg_schema) == []
    finally:
        for conn in conns:
            await conn.close()
    tables = {
        row["table_name"]
        for row in await fetch(
            pg_schema, f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{pg_schema}'"
        )
    }
    assert {
        "schema_migrations",
        "audit_events",
        "payee_results",
        "payee_result_events",
        "suppliers",
        "supplier_sync_state",
        "sink_rejected_records",
    } <= tables


async def test_an_edited_migration_is_refused(pg_schema, tmp_path: Path):
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id int);")
    conn = await connect(Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema))
    try:
        assert [m.name for m in await migrate(conn, pg_schema, load_migrations(tmp_path))] == [
            "0001_first.sql"
        ]
        (tmp_path / "0001_first.sql").write_text("CREATE TABLE first (id bigint);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(conn, pg_schema, load_migrations(tmp_path))
    finally:
        await conn.close()


def test_migration_files_must_be_numbered(tmp_path: Path):
    (tmp_path / "create_things.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_description"):
        load_migrations(tmp_path)


async def test_writing_a_batch_twice_stores_each_event_once(writer, pg_schema):
    results = [make_result(i) for i in range(5)]
    batch = SinkBatch(
        audit=[row for result in results for row in audit_rows(make_audit(result, ("matched", "emitted")))],
        results=[result_row(result) for result in results],
        rejected=[RejectedRow("t.audit", 0, 3, "empty value", None)],
    )
    first = await writer.write(batch)
    again = await writer.write(batch)

    assert first == {
        "audit_events": 10,
        "payee_result_events": 5,
        "payee_results": 5,
        "sink_rejected_records": 1,
    }
    assert again == {
        "audit_events": 0,
        "payee_result_events": 0,
        "payee_results": 0,
        "sink_rejected_records": 0,
    }
    counts = await fetch(
        pg_schema,
        """SELECT (SELECT count(*) FROM audit_events) AS audit,
                  (SELECT count(*) FROM payee_result_events) AS events,
                  (SELECT count(*) FROM payee_results) AS latest,
                  (SELECT count(*) FROM sink_rejected_records) AS rejected""",
    )
    assert dict(counts[0]) == {"audit": 10, "events": 5, "latest": 5, "rejected": 1}


async def test_the_latest_result_is_chosen_by_order_key_not_processing_time(writer, pg_schema):
    newer = make_result(1, order_key=5, processed_at=START)
    # An older source record that took the LLM detour: processed later, still older.
    older = make_result(1, order_key=1, processed_at=START + timedelta(minutes=5))
    newest_in_batch = make_result(1, order_key=9, processed_at=START)

    await writer.write(SinkBatch(results=[result_row(newer)]))
    await writer.write(SinkBatch(results=[result_row(older)]))
    [latest] = await fetch(pg_schema, "SELECT event_id, order_key FROM payee_results")
    assert (str(latest["event_id"]), latest["order_key"]) == (newer.event_id, 5)

    # Two results for one key in one batch: the newer wins, whatever the order.
    await writer.write(SinkBatch(results=[result_row(newest_in_batch), result_row(older)]))
    [latest] = await fetch(pg_schema, "SELECT event_id, sic_code, confidence FROM payee_results")
    assert (str(latest["event_id"]), latest["sic_code"], latest["confidence"]) == (
        newest_in_batch.event_id,
        "5072",
        0.9,
    )
    history = await fetch(pg_schema, "SELECT event_id FROM payee_result_events ORDER BY order_key")
    assert [str(row["event_id"]) for row in history] == [older.event_id, newer.event_id, newest_in_batch.event_id]


async def test_a_repaired_result_of_the_same_source_record_replaces_the_old_one(writer, pg_schema):
    degraded = make_result(1, order_key=4, processed_at=START, result_version="degraded")
    repaired = make_result(1, order_key=4, processed_at=START + timedelta(minutes=1), result_version="repaired")
    assert degraded.event_id == repaired.event_id  # same source record, same delivery id
    await writer.write(SinkBatch(results=[result_row(degraded)]))
    await writer.write(SinkBatch(results=[result_row(repaired)]))
    await writer.write(SinkBatch(results=[result_row(degraded)]))  # a late redelivery of the old one
    [latest] = await fetch(pg_schema, "SELECT result_version FROM payee_results")
    assert latest["result_version"] == "repaired"
    assert len(await fetch(pg_schema, "SELECT 1 FROM payee_result_events")) == 2


async def test_audit_history_finds_a_record_by_any_of_its_ids(writer, pg_schema):
    result, other = make_result(1), make_result(2)
    event = make_audit(result, ("received", "matched", "emitted"))
    rows = audit_rows(event)
    await writer.write(SinkBatch(audit=[*reversed(rows), *audit_rows(make_audit(other))]))

    conn = await connect(Settings(postgres_dsn=TEST_DSN, postgres_schema=pg_schema))
    try:
        for key in (result.record_key, result.correlation_id, result.event_id):
            history = await audit_history(conn, key)
            assert [entry["action"] for entry in history] == ["received", "matched", "emitted"], key
        assert len(await audit_history(conn, event.event_id)) == 3
        [single] = await audit_history(conn, str(rows[1].event_id))
        assert single["action"] == "matched"
        assert single["outcome"] == {"status": "enriched"} and single["versions"]["rules"] == "r1"
        assert await audit_history(conn, "ap:unknown") == []
    finally:
        await conn.close()
