"""PostgreSQL goes away under the sink and comes back: the sink keeps retrying its batch (counting
errors, never committing past unstored records) and catches up with every event stored once."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from streams.postgres import connect
from tests.integration.test_postgres_sink import (  # noqa: F401 - sink_settings is a fixture
    audit_rows,
    committed_total,
    events_for,
    publish_events,
    running_sink,
    sink_errors,
    sink_settings,
    table_counts,
    wait_for_value,
)

pytestmark = pytest.mark.integration


def pg_cluster(action: str) -> None:
    """Stop or start the local PostgreSQL cluster (Debian's pg_ctlcluster; one version installed)."""
    version = next(Path("/etc/postgresql").iterdir()).name
    mode = ["-m", "fast"] if action == "stop" else []
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *mode], check=True, timeout=60
    )


async def test_sink_catches_up_after_postgres_restarts(sink_settings):  # noqa: F811
    settings = sink_settings
    before_outage, during_outage = events_for(0, 50), events_for(50, 50)
    async with running_sink(settings) as sink:
        published = await publish_events(settings, *before_outage)
        await wait_for_value(lambda: audit_rows(settings), 150, 40, "audit rows before the outage")

        errors_before = sink_errors()
        try:
            await asyncio.to_thread(pg_cluster, "stop")
            published += await publish_events(settings, *during_outage)
            deadline = time.monotonic() + 20
            while sink_errors() < errors_before + 3:  # the sink keeps retrying the batch
                assert time.monotonic() < deadline and not sink.done()
                await asyncio.sleep(0.2)
        finally:
            await asyncio.to_thread(pg_cluster, "start")

        await wait_for_value(
            lambda: committed_total(settings), published, 40, "records committed by the sink"
        )

    counts = await table_counts(settings)
    assert counts["audit_rows"] == counts["audit_ids"] == 300
    assert counts["result_events"] == counts["latest_results"] == 100
    conn = await connect(settings)
    try:
        stored = {str(row["audit_event_id"]) for row in await conn.fetch("SELECT DISTINCT audit_event_id FROM audit_events")}
    finally:
        await conn.close()
    assert stored == {event.event_id for event in before_outage[1] + during_outage[1]}
