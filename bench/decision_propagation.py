"""How long a reviewer's decision takes to reach every worker (target: < 2 s).

Usage: python bench/decision_propagation.py [--workers 3] [--decisions 20]
Starts the embedded broker and N worker processes (the bundled sample suppliers), publishes
decisions the way the console does (streams/review/web.py's publisher, acknowledged by the
broker) and polls every worker's /decisions/{id} until it applies each one. Prints the median
and maximum, over the decisions, of the time until the last worker applied it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from schemas.decisions import ReviewDecision  # noqa: E402
from streams.dev import WorkerProcess, default_supplier_file  # noqa: E402
from streams.embedded_broker import EmbeddedTansu, free_port  # noqa: E402
from streams.kafka_io import ensure_topics, kafka_producer  # noqa: E402
from streams.review.web import kafka_publisher  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.supplier_loading import load_supplier_file  # noqa: E402


def in_force(worker: WorkerProcess, decision_id: str) -> bool:
    url = f"http://{worker.settings.web_host}:{worker.settings.web_port}/decisions/{decision_id}"
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(json.loads(response.read())["in_force"])


async def measure(settings: Settings, workers: list[WorkerProcess], count: int) -> list[float]:
    spreads = []
    async with kafka_producer(settings) as producer:
        publish = kafka_publisher(producer, settings.topic_decisions)
        for i in range(count):
            decision = ReviewDecision(
                decision_id=str(uuid.uuid4()), normalized_name=f"BENCH PAYEE {i}", outcome="no_match",
                reviewer="bench", decided_at=datetime.now(UTC),
            )
            started = time.perf_counter()
            await publish(decision.key, decision)
            waiting = set(range(len(workers)))
            while waiting:
                waiting = {w for w in waiting if not await asyncio.to_thread(in_force, workers[w], decision.decision_id)}
                if waiting:
                    await asyncio.sleep(0.01)
                if time.perf_counter() - started > 30:
                    raise TimeoutError("a worker did not apply the decision within 30 s")
            spreads.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
    return spreads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--decisions", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="payee-bench-decisions-"))
    with EmbeddedTansu(log_path=work / "broker.log") as broker:
        base = Settings(broker_url=broker.url, broker_flavor="tansu", partitions=4, log_level="WARNING")
        asyncio.run(ensure_topics(base))
        asyncio.run(load_supplier_file(base, default_supplier_file(), None))
        workers = [
            WorkerProcess(
                base.model_copy(update={"data_dir": work / f"worker-{n}", "web_port": free_port()}),
                work / f"worker-{n}.log",
            ).start()
            for n in range(args.workers)
        ]
        try:
            for worker in workers:
                worker.wait_ready(timeout_s=300)
            spreads = asyncio.run(measure(base, workers, args.decisions))
        finally:
            for worker in workers:
                worker.stop()
    print(
        f"decision applied by all {args.workers} workers: median {statistics.median(spreads):.3f} s, "
        f"max {max(spreads):.3f} s over {len(spreads)} decisions (publish with broker ack included)"
    )


if __name__ == "__main__":
    main()
