"""``payee-stream`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from streams.db_cli import register_commands, register_supplier_sync
from streams.review.cli import register_commands as register_review_commands
from streams.settings import Settings, get_settings

# Off a terminal (a log file, CI) the bar is a plain line at most this often, not a redraw per row.
LOG_PROGRESS_INTERVAL_S = 30.0


class _LogLines:
    """tqdm's output as whole lines: a redraw ("\\r…") becomes one line of the log."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()
        if text:
            self._stream.write(text + "\n")

    def flush(self) -> None:
        self._stream.flush()


def progress_bar(total: int | None, desc: str, unit: str = "row") -> tqdm:
    """A live bar on a terminal; on anything else a line every ``LOG_PROGRESS_INTERVAL_S``."""
    if sys.stderr.isatty():
        return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=_LogLines(sys.stderr),
        mininterval=LOG_PROGRESS_INTERVAL_S,
        maxinterval=LOG_PROGRESS_INTERVAL_S,
        ascii=True,
        ncols=100,
    )


def _file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--column",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="which column feeds a record field, e.g. payee_name='Vendor Name' "
        "(address_lines='Addr 1,Addr 2' for several); repeatable; overrides detection",
    )
    parser.add_argument("--sheet", help="XLSX sheet, by name or 1-based number (default: the first)")


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from streams.app import JsonLogWorker, create_worker
    from streams.logging import configure_logging, faust_logging_config

    configure_logging(settings.log_level)
    ctx = create_worker(settings)
    worker = JsonLogWorker(
        ctx.app,
        loglevel=settings.log_level.lower(),
        logging_config=faust_logging_config(settings.log_level),
        quiet=True,
    )
    worker.execute_from_commandline()
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka_io import publish_payee_file

    sent = asyncio.run(
        publish_payee_file(
            settings,
            Path(args.file),
            args.topic or settings.topic_raw,
            column_overrides=args.column,
            sheet=args.sheet,
            source_system=args.source_system,
            announce=lambda text: print(text, file=sys.stderr),
            progress=progress_bar,
        )
    )
    print(f"published {sent} records", file=sys.stderr)
    return 0


def cmd_tail(settings: Settings, args: argparse.Namespace) -> int:
    from streams.kafka_io import topic_reader

    async def run() -> None:
        seen = 0
        async with topic_reader(settings, args.topic, from_beginning=not args.new_only) as consumer:
            while args.limit is None or seen < args.limit:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for record in records:
                        print(record.value.decode(errors="replace") if record.value else "null", flush=True)
                        seen += 1

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_suppliers_load(settings: Settings, args: argparse.Namespace) -> int:
    from streams.supplier_loading import load_supplier_file

    report = asyncio.run(load_supplier_file(settings, Path(args.file), Path(args.errors) if args.errors else None))
    print(report.summary(), file=sys.stderr)
    return 0 if report.published else 1


def cmd_suppliers_delete(settings: Settings, args: argparse.Namespace) -> int:
    from streams.supplier_loading import delete_suppliers

    deleted = asyncio.run(delete_suppliers(settings, args.supplier_ids))
    print(f"published {deleted} tombstones", file=sys.stderr)
    return 0


def cmd_schemas_export(settings: Settings, args: argparse.Namespace) -> int:
    from schemas.export import export_json_schemas

    for path in export_json_schemas(Path(args.out)):
        print(path)
    return 0


def cmd_batch(settings: Settings, args: argparse.Namespace) -> int:
    from domain.batch import run_batch
    from domain.matching import DefaultPlaces
    from domain.pipeline import Thresholds

    summary = run_batch(
        input_path=Path(args.input),
        suppliers_path=Path(args.suppliers),
        output_path=Path(args.out),
        match_threshold=settings.match_threshold,
        ambiguity_margin=settings.match_ambiguity_margin,
        thresholds=Thresholds(review=settings.review_threshold, llm=settings.llm_threshold),
        progress=progress_bar,
        column_overrides=args.column,
        sheet=args.sheet,
        source_system=args.source_system,
        announce=lambda text: print(text, file=sys.stderr),
        default_places=DefaultPlaces.parse(settings.default_country, settings.source_default_places),
    )
    print(json.dumps(summary), file=sys.stderr)
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from streams.replay import Bound, ReplayFilter, replay

    with progress_bar(None, "replay", unit="rec") as bar:
        summary = asyncio.run(
            replay(
                settings,
                start=Bound.parse(args.from_) if args.from_ else None,
                stop=Bound.parse(args.to) if args.to else None,
                partition=args.partition,
                record_filter=ReplayFilter.parse(args.filter) if args.filter else None,
                from_dead_letters=args.dead_letters,
                run_id=args.run_id,
                on_progress=bar.update,
                dry_run=args.dry_run,
            )
        )
    print(json.dumps(summary.as_dict()))
    # Non-zero when less than the requested range could be replayed (deleted, unreadable).
    return 0 if summary.complete else 1


def cmd_dev(settings: Settings, args: argparse.Namespace) -> int:
    from streams.dev import run_dev

    return run_dev(settings, args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payee-stream", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("worker", help="run an enrichment worker").set_defaults(handler=cmd_worker)

    dev = commands.add_parser(
        "dev", help="embedded demo: local broker, worker, sample suppliers and payees, results"
    )
    dev.add_argument("--suppliers", help="supplier CSV(.gz); default: ../shared/data or the bundled sample")
    dev.add_argument("--payees", help="payee CSV/JSONL; default: the bundled sample")
    dev.add_argument("--keep-running", action="store_true", help="keep broker and worker up until Ctrl-C")
    dev.set_defaults(handler=cmd_dev)

    produce = commands.add_parser("produce", help="publish payee records from a CSV, XLSX or JSON lines file")
    produce.add_argument("file", help="CSV (any delimiter), XLSX or JSON lines; columns detected, see --column")
    produce.add_argument("--topic", help="default: the raw payee topic")
    produce.add_argument("--source-system", help="when the file has no source_system column (default: the file name)")
    _file_options(produce)
    produce.set_defaults(handler=cmd_produce)

    tail = commands.add_parser("tail", help="print the records of a topic")
    tail.add_argument("topic")
    tail.add_argument("--limit", type=int, help="stop after this many records")
    tail.add_argument("--new-only", action="store_true", help="only records published from now on")
    tail.set_defaults(handler=cmd_tail)

    suppliers = commands.add_parser("suppliers", help="supplier index").add_subparsers(dest="action", required=True)
    register_supplier_sync(suppliers)
    load = suppliers.add_parser("load", help="publish a supplier CSV(.gz) to the suppliers topic")
    load.add_argument("file")
    load.add_argument("--errors", help="write rejected rows to this CSV")
    load.set_defaults(handler=cmd_suppliers_load)
    delete = suppliers.add_parser("delete", help="delete suppliers (tombstones)")
    delete.add_argument("supplier_ids", nargs="+")
    delete.set_defaults(handler=cmd_suppliers_delete)

    schemas = commands.add_parser("schemas", help="event schemas").add_subparsers(dest="action", required=True)
    export = schemas.add_parser("export", help="write JSON Schema files for consumers")
    export.add_argument("--out", default="schemas/json")
    export.set_defaults(handler=cmd_schemas_export)

    batch = commands.add_parser("batch", help="match and classify a payee file without Kafka")
    batch.add_argument("input", help="CSV (any delimiter), XLSX or JSON lines; columns detected, see --column")
    batch.add_argument("--suppliers", required=True)
    batch.add_argument("--out", required=True, help="OUT.csv, OUT.xlsx (input columns + results) or OUT.jsonl")
    batch.add_argument("--source-system", default="batch", help="when the file has no source_system column")
    _file_options(batch)
    batch.set_defaults(handler=cmd_batch)
    replay = commands.add_parser("replay", help="re-send a range of payees.raw (or the DLQ) through the pipeline")
    replay.add_argument("--from", dest="from_", help="offset, ISO timestamp or epoch ms (inclusive); default: start")
    replay.add_argument("--to", help="offset, ISO timestamp or epoch ms (exclusive); default: current end")
    replay.add_argument("--partition", type=int)
    replay.add_argument("--filter", help="FIELD=VALUE on the payee record, e.g. source=ap-east")
    replay.add_argument("--dead-letters", action="store_true", help="replay the dead-letter topic's originals")
    replay.add_argument("--run-id", help="default: a new UUID")
    replay.add_argument("--dry-run", action="store_true", help="read and report what would be sent; send nothing")
    replay.set_defaults(handler=cmd_replay)
    register_commands(commands)
    register_review_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from domain.payee_files import PayeeFileError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(get_settings(), args))
    except PayeeFileError as exc:
        print(f"payee-stream {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
