"""Command line for the PostgreSQL side: ``db migrate``, ``sink``, ``audit show``, ``suppliers sync``.

``streams/cli.py`` calls ``register_commands`` with its top-level subparsers and
``register_supplier_sync`` with the subparsers of its ``suppliers`` command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from streams.logging import configure_logging
from streams.settings import Settings

AUDIT_TABLE_COLUMNS = ("occurred_at", "action", "stage", "record_key", "event_id", "outcome")
OUTCOME_WIDTH = 60
MISSING_TABLE_EXIT_CODE = 2


def run_db_command(settings: Settings, command: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine with JSON logs on stderr; a missing table gets a hint, not a traceback."""
    import asyncpg

    configure_logging(settings.log_level)
    try:
        return asyncio.run(command)
    except asyncpg.UndefinedTableError as error:
        print(
            f"{error}: run `payee-stream db migrate` (schema {settings.postgres_schema}); "
            "for suppliers sync, the source needs the table of migrations/0004_suppliers.sql",
            file=sys.stderr,
        )
        return MISSING_TABLE_EXIT_CODE


def cmd_db_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from streams.db import migrate
    from streams.postgres import connect

    async def run() -> int:
        conn = await connect(settings)
        try:
            applied = await migrate(conn, settings.postgres_schema)
        finally:
            await conn.close()
        for migration in applied:
            print(f"applied {migration.name}")
        print(
            f"schema {settings.postgres_schema} is up to date ({len(applied)} applied now)", file=sys.stderr
        )
        return 0

    return run_db_command(settings, run())


def cmd_sink(settings: Settings, args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from streams.metrics import REGISTRY
    from streams.postgres_sink import run_sink

    configure_logging(settings.log_level)
    start_http_server(settings.sink_metrics_port, addr=settings.web_host, registry=REGISTRY)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_sink(settings, stop)

    asyncio.run(run())
    return 0


def format_audit_table(history: list[dict[str, Any]]) -> str:
    """A fixed-width table, one line per event; outcomes are shortened to keep lines readable."""

    def cell(entry: dict[str, Any], column: str) -> str:
        value = entry[column]
        if column == "outcome":
            text = json.dumps(value, separators=(",", ":"), sort_keys=True)
            return text if len(text) <= OUTCOME_WIDTH else text[: OUTCOME_WIDTH - 1] + "…"
        return "" if value is None else str(value)

    rows = [
        AUDIT_TABLE_COLUMNS,
        *([cell(entry, column) for column in AUDIT_TABLE_COLUMNS] for entry in history),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(AUDIT_TABLE_COLUMNS))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def cmd_audit_show(settings: Settings, args: argparse.Namespace) -> int:
    from streams.db import audit_history
    from streams.postgres import connect

    async def run() -> int:
        conn = await connect(settings)
        try:
            history = await audit_history(conn, args.id)
        finally:
            await conn.close()
        if not history:
            print(f"no audit events for {args.id}", file=sys.stderr)
            return 1
        print(json.dumps(history, indent=2) if args.json else format_audit_table(history))
        return 0

    return run_db_command(settings, run())


def cmd_suppliers_sync(settings: Settings, args: argparse.Namespace) -> int:
    from streams.db import sync_suppliers

    async def run() -> int:
        configured = settings.suppliers_source_dsn
        source_dsn = args.dsn or (configured.get_secret_value() if configured else None)
        report = await sync_suppliers(settings, source_dsn=source_dsn, full=args.full)
        if report.skipped:
            print(
                f"rows without a name (or with non-text columns): {', '.join(report.skipped[:20])}",
                file=sys.stderr,
            )
        print(report.summary(), file=sys.stderr)
        return 0

    return run_db_command(settings, run())


def register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    db = subparsers.add_parser("db", help="PostgreSQL schema").add_subparsers(dest="action", required=True)
    db.add_parser(
        "migrate", help="create or update the tables (idempotent; in PAYEE_STREAM_POSTGRES_SCHEMA)"
    ).set_defaults(handler=cmd_db_migrate)

    subparsers.add_parser(
        "sink", help="write audit events and results to PostgreSQL (metrics on the sink metrics port)"
    ).set_defaults(handler=cmd_sink)

    audit = subparsers.add_parser("audit", help="audit trail in PostgreSQL").add_subparsers(
        dest="action", required=True
    )
    show = audit.add_parser("show", help="the audit history of an event, correlation id or record key")
    show.add_argument(
        "id", metavar="EVENT_OR_PAYEE_ID", help="event id, result event id, correlation id or record key"
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.set_defaults(handler=cmd_audit_show)


def register_supplier_sync(suppliers_subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sync = suppliers_subparsers.add_parser(
        "sync",
        help="publish suppliers changed since the last sync from a PostgreSQL suppliers table",
        description=(
            "Reads the suppliers table (see migrations/0004_suppliers.sql for its contract) and "
            "publishes rows changed since the last sync; rows with deleted = true become tombstones."
        ),
    )
    sync.add_argument(
        "--dsn",
        help="database holding the suppliers table (default: PAYEE_STREAM_SUPPLIERS_SOURCE_DSN, else the "
        "payee-stream database and schema; add ?search_path=SCHEMA to choose a schema). A DSN with a "
        "password belongs in PAYEE_STREAM_SUPPLIERS_SOURCE_DSN (or its _FILE): a command line is "
        "visible to every user of the machine",
    )
    sync.add_argument("--full", action="store_true", help="ignore the last sync and publish every row")
    sync.set_defaults(handler=cmd_suppliers_sync)
