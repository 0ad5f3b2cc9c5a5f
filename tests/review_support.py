"""Shared by the review console tests: real results from the fixture suppliers."""

from __future__ import annotations

import itertools
import os
from decimal import Decimal

from domain.decisions import DecisionLookup
from domain.matching import SupplierIndex
from domain.pipeline import Thresholds, build_result, current_versions, enrich
from domain.suppliers import Supplier, read_suppliers_csv
from schemas.events import EnrichedPayee, PayeeRecord, SourcePosition
from tests.conftest import FIXTURE_SUPPLIERS

THRESHOLDS = Thresholds(review=0.75, llm=0.70)
# Many suppliers of this name in the fixture: without a place, the match is ambiguous.
AMBIGUOUS_NAME = "AMERICAN LEGION"
# Each result comes from a source position of its own, later ones at higher offsets (order keys).
_OFFSETS = itertools.count()


def fixture_index() -> SupplierIndex:
    index = SupplierIndex(match_threshold=0.85, ambiguity_margin=0.05)
    for row in read_suppliers_csv(FIXTURE_SUPPLIERS):
        if isinstance(row, Supplier):
            index.upsert(row)
    return index


def payee(record_id: str, name: str = AMBIGUOUS_NAME, amount: str | None = "100", source: str = "ap-east",
          state: str | None = "AK") -> PayeeRecord:
    return PayeeRecord(
        source_system=source,
        source_record_id=record_id,
        payee_name=name,
        state=state,
        amount=Decimal(amount) if amount is not None else None,
        currency="USD" if amount is not None else None,
    )


def result_for(record: PayeeRecord, index: SupplierIndex, decisions: DecisionLookup | None = None) -> EnrichedPayee:
    source = SourcePosition(topic="payees.raw", partition=0, offset=next(_OFFSETS))
    enrichment = enrich(record, index, source=source, decisions=decisions)
    return build_result(enrichment, current_versions(index, "test", THRESHOLDS), THRESHOLDS, source)


def review_settings(settings, schema: str):
    """The test's settings with its own PostgreSQL schema and free ports for sink and console."""
    from pydantic import SecretStr

    from streams.embedded_broker import free_port
    from tests.conftest import TEST_DSN

    return settings.model_copy(
        update={
            "postgres_dsn": SecretStr(TEST_DSN),  # model_copy does not validate: the setting's type
            "postgres_schema": schema,
            "review_port": free_port(),
            "sink_metrics_port": free_port(),
            "review_metrics_interval_s": 1.0,
            "log_level": os.environ.get("PAYEE_STREAM_TEST_LOG_LEVEL", settings.log_level),
        }
    )


async def prepare_database(settings, reviewers: list[tuple[str, str, str]]) -> None:
    """Migrate the schema and add (username, role, password) reviewers."""
    from streams.db import connect, migrate
    from streams.review.auth import add_reviewer

    conn = await connect(settings)
    try:
        await migrate(conn, settings.postgres_schema)
        for username, role, password in reviewers:
            await add_reviewer(conn, username, username.title(), role, password, with_token=False)
    finally:
        await conn.close()


class ChildProcess:
    """``payee-stream <command>`` as a child process with the test's settings, logging to a file."""

    def __init__(self, settings, command: str, log_path) -> None:
        import os
        import subprocess
        import sys

        from streams.dev import REPO_ROOT

        self.log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", command],
            env={**os.environ, **settings.as_env()},
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )

    def wait_http(self, url: str, timeout_s: float = 30) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with {self.process.returncode}; see {self.log_path}")
            try:
                urllib.request.urlopen(url, timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"{url} not up within {timeout_s}s; see {self.log_path}")

    def stop(self) -> None:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
