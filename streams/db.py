"""PostgreSQL: schema migrations, audit history and the supplier sync.

Connections come from streams/postgres.py; their ``search_path`` is ``settings.postgres_schema``,
so the same SQL runs in the default ``public`` schema or in an isolated one (the tests use one
schema per test).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from tqdm import tqdm

from streams.kafka_io import OutgoingRecord, ensure_topics, kafka_producer, publish
from streams.postgres import connect, connect_dsn, quote_ident
from streams.settings import Settings

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATION_FILE = re.compile(r"^(\d+)_\w+\.sql$")


# Migrations


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The numbered ``NNNN_name.sql`` files of ``directory``, in version order."""
    migrations: dict[int, Migration] = {}
    for path in directory.glob("*.sql"):
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path.name}: version {version} is also {migrations[version].name}")
        migrations[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [migrations[version] for version in sorted(migrations)]


async def _recorded_migrations(conn: asyncpg.Connection, schema: str) -> dict[int, asyncpg.Record]:
    table = f"{quote_ident(schema)}.schema_migrations"
    if await conn.fetchval("SELECT to_regclass($1)", table) is None:
        return {}
    return {row["version"]: row for row in await conn.fetch(f"SELECT version, name, checksum FROM {table}")}


def _pending_migrations(migrations: list[Migration], recorded: dict[int, asyncpg.Record]) -> list[Migration]:
    pending = []
    for migration in migrations:
        applied = recorded.get(migration.version)
        if applied is None:
            pending.append(migration)
        elif applied["checksum"] != migration.checksum:
            raise MigrationError(
                f"{migration.name} changed after it was applied (as {applied['name']}); "
                "add a new migration instead"
            )
    return pending


async def migrate(
    conn: asyncpg.Connection, schema: str, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply the migrations not yet recorded in ``schema_migrations``; returns those applied.

    An up-to-date schema is only read, so a sink whose database user may not change the schema
    can still call this on start. Otherwise a session advisory lock per schema makes concurrent
    runs take turns (the later ones then find nothing left to do), and each migration runs in a
    transaction of its own together with its bookkeeping row.
    """
    migrations = load_migrations() if migrations is None else migrations
    if not _pending_migrations(migrations, await _recorded_migrations(conn, schema)):
        return []
    lock_name = f"payee-stream-migrations:{schema}"
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", lock_name)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )"""
        )
        pending = _pending_migrations(migrations, await _recorded_migrations(conn, schema))
        for migration in pending:
            async with conn.transaction():
                await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {quote_ident(schema)}.schema_migrations (version, name, checksum) "
                    "VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration_applied", schema=schema, migration=migration.name)
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", lock_name)


# Audit history

AUDIT_HISTORY_SQL = """
SELECT event_id, occurred_at, action, stage, record_key, correlation_id, result_event_id,
       replay_run_id, outcome, versions, timings_ms
FROM audit_events
WHERE event_id = $1 OR audit_event_id = $1 OR result_event_id = $1 OR correlation_id = $2 OR record_key = $2
ORDER BY occurred_at, audit_event_id, decision_index, written_at, event_id
"""


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def audit_history(conn: asyncpg.Connection, event_or_payee_id: str) -> list[dict[str, Any]]:
    """Audit events whose event id, result event id, correlation id or record key is the given id,
    oldest first, as JSON-ready dicts."""
    rows = await conn.fetch(AUDIT_HISTORY_SQL, _as_uuid(event_or_payee_id), event_or_payee_id)
    history = []
    for row in rows:
        entry = dict(row)
        entry["event_id"] = str(row["event_id"])
        entry["result_event_id"] = str(row["result_event_id"]) if row["result_event_id"] else None
        entry["occurred_at"] = row["occurred_at"].isoformat()
        for column in ("outcome", "versions", "timings_ms"):
            entry[column] = json.loads(row[column])
        history.append(entry)
    return history


# Supplier sync

SUPPLIER_COLUMNS = (
    "supplier_id",
    "name",
    "alt_name",
    "address",
    "city",
    "state",
    "postal_code",
    "country",
    "category",
    "code",
)
SYNC_PAGE_SIZE = 5000
# Below every real updated_at, so the first sync starts at the beginning.
START_WATERMARK = (datetime.min.replace(tzinfo=UTC), "")

Watermark = tuple[datetime, str]

CHANGED_SUPPLIERS_SQL = f"""
SELECT {", ".join(SUPPLIER_COLUMNS)}, updated_at, deleted
FROM suppliers
WHERE (updated_at, supplier_id) > ($1, $2)
ORDER BY updated_at, supplier_id
LIMIT $3
"""
COUNT_CHANGED_SQL = "SELECT count(*) FROM suppliers WHERE (updated_at, supplier_id) > ($1, $2)"
SAVE_WATERMARK_SQL = """
INSERT INTO supplier_sync_state (topic, last_updated_at, last_supplier_id) VALUES ($1, $2, $3)
ON CONFLICT (topic) DO UPDATE
SET last_updated_at = excluded.last_updated_at, last_supplier_id = excluded.last_supplier_id,
    synced_at = now()
"""


@dataclass
class SupplierSyncReport:
    published: int = 0
    deleted: int = 0
    skipped: list[str] = field(default_factory=list)  # ids of rows that are not valid suppliers
    watermark: Watermark | None = None

    def summary(self) -> str:
        position = f" up to {self.watermark[0].isoformat()}" if self.watermark else ""
        skipped = f", skipped {len(self.skipped)} invalid rows" if self.skipped else ""
        return (
            f"published {self.published} suppliers and {self.deleted} tombstones (deleted){skipped}{position}"
        )


def change_records(rows: list[asyncpg.Record], report: SupplierSyncReport) -> list[OutgoingRecord]:
    """Suppliers-topic records for changed rows, counted in ``report``: a tombstone for a deleted
    row, else the supplier. A row without id or name is skipped, as the CSV loader skips it."""
    from domain.suppliers import supplier_from_dict
    from streams.supplier_loading import supplier_record, tombstone

    records = []
    for row in rows:
        if row["deleted"]:
            records.append(tombstone(row["supplier_id"]))
            report.deleted += 1
            continue
        try:
            supplier = supplier_from_dict({column: row[column] for column in SUPPLIER_COLUMNS})
        except (TypeError, ValueError):
            report.skipped.append(row["supplier_id"])
            continue
        records.append(supplier_record(supplier))
        report.published += 1
    return records


async def load_watermark(conn: asyncpg.Connection, topic: str) -> Watermark | None:
    row = await conn.fetchrow(
        "SELECT last_updated_at, last_supplier_id FROM supplier_sync_state WHERE topic = $1", topic
    )
    return (row["last_updated_at"], row["last_supplier_id"]) if row else None


async def sync_suppliers(
    settings: Settings, source_dsn: str | None = None, full: bool = False, page_size: int = SYNC_PAGE_SIZE
) -> SupplierSyncReport:
    """Publish the suppliers changed since the last sync to ``settings.topic_suppliers``.

    Reads the ``suppliers`` table at ``source_dsn`` (default: the payee-stream database and
    schema) in pages ordered by (updated_at, supplier_id). The watermark is saved in
    ``supplier_sync_state`` of the payee-stream database after each page is acknowledged by the
    broker, so an interrupted sync resumes where it stopped. ``full`` ignores the watermark.
    """
    report = SupplierSyncReport()
    state = await connect(settings)
    source = await connect_dsn(source_dsn) if source_dsn else state
    try:
        watermark = None if full else await load_watermark(state, settings.topic_suppliers)
        position = watermark or START_WATERMARK
        total = await source.fetchval(COUNT_CHANGED_SQL, *position)
        await ensure_topics(settings)
        async with kafka_producer(settings) as producer:
            with tqdm(total=total, desc=f"→ {settings.topic_suppliers}", unit="sup", file=sys.stderr) as bar:
                while rows := await source.fetch(CHANGED_SUPPLIERS_SQL, *position, page_size):
                    records = change_records(rows, report)
                    await publish(producer, settings.topic_suppliers, records, on_sent=bar.update)
                    bar.update(len(rows) - len(records))  # the skipped ones
                    position = (rows[-1]["updated_at"], rows[-1]["supplier_id"])
                    await state.execute(SAVE_WATERMARK_SQL, settings.topic_suppliers, *position)
                    report.watermark = position
    finally:
        if source is not state:
            await source.close()
        await state.close()
    return report
