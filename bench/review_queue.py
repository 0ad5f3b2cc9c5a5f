"""Queue page of the review console with 100,000 open items: load them, time GET / over HTTP.

Usage: python bench/review_queue.py [--items N] [--dsn DSN]
Loads N review items (real results from the fixture suppliers, varied amounts, sources, ages)
into a fresh schema, serves the console in-process and times the queue page, unfiltered and with
each filter, signed in with a reviewer token. Prints median and p95 per page; target < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streams.db import connect, migrate, quote_ident  # noqa: E402
from streams.postgres_sink import result_row  # noqa: E402
from streams.review import auth  # noqa: E402
from streams.review.sink_rows import ReviewItemRow, review_item_row  # noqa: E402
from streams.review.web import create_app  # noqa: E402
from streams.settings import Settings  # noqa: E402
from tests.review_support import fixture_index, payee, result_for  # noqa: E402

SOURCES = ["ap-east", "ap-west", "payroll", "grants", "travel"]
NAMES = ["AMERICAN LEGION", "KNIGHTS OF COLUMBUS", "ACME SUPPLY", "JOHN SMITH", "CITY OF SPRINGFIELD"]
PAGES = {
    "queue": "/",
    "queue, reason filter": "/?reason=ambiguous_match",
    "queue, source filter": "/?source=payroll",
    "queue, older than 1d": "/?age=1d",
    "queue, page 20": "/?page=20",
}


async def load(settings: Settings, items: int) -> None:
    index = fixture_index()
    templates = [result_for(payee(str(i), name=name, source=source), index)
                 for i, (name, source) in enumerate((n, s) for n in NAMES for s in SOURCES)]
    rng = random.Random(7)
    now = datetime.now(UTC)
    rows: list[tuple] = []
    for i in range(items):
        template = templates[i % len(templates)]
        amount = None if rng.random() < 0.1 else Decimal(str(round(rng.lognormvariate(6, 2), 2)))
        event = template.model_copy(update={
            "record_key": f"{template.input.source_system}:bench-{i}",
            "event_id": str(uuid.uuid4()),
            "input": template.input.model_copy(update={"amount": amount}),
            "review_reasons": template.review_reasons or ["low_classification_confidence"],
        })
        row = review_item_row(event, result_row(event).result, now, 1000.0)
        rows.append((*row, now - timedelta(seconds=rng.uniform(0, 14 * 86400))))
    conn = await connect(settings)
    try:
        columns = [*ReviewItemRow._fields, "queued_at"]
        reasons_at = ReviewItemRow._fields.index("reasons")  # JSON in the row, an array in COPY
        records = [(*r[:reasons_at], json.loads(r[reasons_at]), *r[reasons_at + 1 :]) for r in rows]
        await conn.copy_records_to_table("review_items", records=records, columns=columns)
        await conn.execute("VACUUM ANALYZE review_items")
        await auth.add_reviewer(conn, "bench", "Bench", "read_only", None, with_token=False)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    settings = Settings(postgres_dsn=args.dsn, postgres_schema=schema)
    conn = await connect(settings)
    await migrate(conn, schema)
    token = await auth.add_reviewer(conn, "bench-token", "Bench", "read_only", None, with_token=True)
    await conn.close()
    try:
        started = time.perf_counter()
        await load(settings, args.items)
        print(f"loaded {args.items:,} open review items in {time.perf_counter() - started:.1f} s")

        async def no_publish(key, decision):  # read-only bench
            raise AssertionError("the bench takes no decisions")

        server = TestServer(create_app(settings, publish_decision=no_publish))
        await server.start_server()
        try:
            async with ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
                for label, path in PAGES.items():
                    timings = []
                    for attempt in range(args.repeat + 3):
                        began = time.perf_counter()
                        async with http.get(server.make_url(path)) as response:
                            body = await response.text()
                            assert response.status == 200, (response.status, body[:200])
                        if attempt >= 3:  # warm-up
                            timings.append((time.perf_counter() - began) * 1000)
                    timings.sort()
                    p95 = timings[int(len(timings) * 0.95) - 1]
                    print(f"{label:24s} median {statistics.median(timings):6.1f} ms  p95 {p95:6.1f} ms")
        finally:
            await server.close()
    finally:
        conn = await asyncpg.connect(args.dsn)
        await conn.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
