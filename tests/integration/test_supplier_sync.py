"""``suppliers sync``: a PostgreSQL suppliers table to the compacted suppliers topic, by changes."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from pydantic import SecretStr

from domain.suppliers import Supplier, supplier_to_dict
from streams.db import load_watermark, migrate, sync_suppliers
from streams.postgres import connect, quote_ident
from streams.kafka_io import topic_reader
from streams.settings import Settings
from tests.conftest import TEST_DSN

pytestmark = pytest.mark.integration

INSERT_SUPPLIER_SQL = (
    "INSERT INTO suppliers (supplier_id, name, city, state, category) VALUES ($1, $2, $3, $4, $5)"
)


@pytest.fixture
async def sync_settings(settings: Settings, pg_schema: str) -> Settings:  # noqa: F811
    sync_settings = settings.model_copy(update={"postgres_dsn": SecretStr(TEST_DSN), "postgres_schema": pg_schema})
    conn = await connect(sync_settings)
    try:
        await migrate(conn, pg_schema)
        await conn.executemany(
            INSERT_SUPPLIER_SQL,
            [
                ("S1", "ACME TOOLS INC", "Austin", "TX", "hardware"),
                ("S2", "BOLT SUPPLY CO", "Dallas", "TX", "hardware"),
                ("S3", "CITY OF DENTON", "Denton", "TX", "government"),
                ("S4", "DELTA FREIGHT LLC", None, None, None),
                ("S6", "  ", "Waco", "TX", None),  # no name: not a supplier
            ],
        )
        await conn.execute("UPDATE suppliers SET deleted = true WHERE supplier_id = 'S4'")
    finally:
        await conn.close()
    return sync_settings


async def read_suppliers_topic(
    settings: Settings, expected: int, settle_s: float = 1.0
) -> list[tuple[str, dict | None]]:
    """(key, value or None for a tombstone) of every record, once ``expected`` arrived and no more came."""
    records: list[tuple[str, dict | None]] = []
    deadline = time.monotonic() + 30
    async with topic_reader(settings, settings.topic_suppliers) as consumer:
        settled_at = None
        while time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(
                    (record.key.decode(), json.loads(record.value) if record.value is not None else None)
                    for record in batch
                )
            if len(records) >= expected:
                settled_at = settled_at or time.monotonic() + settle_s
                if time.monotonic() >= settled_at:
                    break
    return records


async def test_sync_publishes_changes_and_tombstones_and_then_only_new_changes(sync_settings):
    settings = sync_settings
    first = await sync_suppliers(settings)
    assert (first.published, first.deleted, first.skipped) == (3, 1, ["S6"])
    latest = dict(await read_suppliers_topic(settings, expected=4))
    assert set(latest) == {"S1", "S2", "S3", "S4"} and latest["S4"] is None
    assert latest["S1"] == supplier_to_dict(
        Supplier("S1", "ACME TOOLS INC", city="Austin", state="TX", category="hardware")
    )

    conn = await connect(settings)
    try:
        await conn.execute("UPDATE suppliers SET name = 'BOLT SUPPLY COMPANY' WHERE supplier_id = 'S2'")
        await conn.execute("UPDATE suppliers SET deleted = true WHERE supplier_id = 'S3'")
        await conn.execute(INSERT_SUPPLIER_SQL, "S5", "ECHO PRINTING", "Plano", "TX", "printing")
    finally:
        await conn.close()

    second = await sync_suppliers(settings)
    assert (second.published, second.deleted) == (2, 1)
    records = await read_suppliers_topic(settings, expected=7)
    # One key stays on one partition, so the last record per key is the newest.
    assert Counter(key for key, _ in records) == {"S1": 1, "S2": 2, "S3": 2, "S4": 1, "S5": 1}
    latest = dict(records)
    assert latest["S2"]["name"] == "BOLT SUPPLY COMPANY" and latest["S3"] is None and latest["S5"] is not None

    nothing_changed = await sync_suppliers(settings)
    assert (nothing_changed.published, nothing_changed.deleted, nothing_changed.skipped) == (0, 0, [])

    everything = await sync_suppliers(settings, full=True)
    assert (everything.published, everything.deleted) == (3, 2)


async def test_sync_reads_another_database_in_pages(sync_settings, pg_schema):  # noqa: F811
    """The suppliers are only reachable through the source DSN: the sync's own schema has none."""
    state_schema = f"{pg_schema}_state"
    settings = sync_settings.model_copy(update={"postgres_schema": state_schema})
    conn = await connect(settings)
    try:
        await migrate(conn, state_schema)
        report = await sync_suppliers(settings, source_dsn=f"{TEST_DSN}?search_path={pg_schema}", page_size=3)
        assert (report.published, report.deleted) == (3, 1)
        assert await load_watermark(conn, settings.topic_suppliers) == report.watermark
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(state_schema)} CASCADE")
        await conn.close()
