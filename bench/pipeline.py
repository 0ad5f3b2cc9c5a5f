"""End-to-end pipeline benchmark on the embedded broker with one worker process.

Publishes N payee records (default 20,000) as fast as the producer goes, then reads
``payees.enriched`` and prints records/s end to end and p50/p99 latency, where latency is the
result's broker timestamp minus the input's broker timestamp (same machine clock).

    python bench/pipeline.py [--records 20000] [--suppliers PATH] [--partitions 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.dev import WorkerProcess, default_supplier_file  # noqa: E402
from streams.embedded_broker import EmbeddedTansu, free_port  # noqa: E402
from streams.kafka_io import OutgoingRecord, ensure_topics, kafka_producer, publish, topic_reader  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.supplier_loading import load_supplier_file  # noqa: E402

PERSON_NAMES = ["JOHN SMITH", "Maria Garcia", "LEE, JENNIFER", "Robert T. Johnson", "Patricia Brown"]


def payee_names(supplier_file: Path, count: int, rng: random.Random) -> list[str]:
    import csv
    import gzip

    opener = gzip.open if supplier_file.suffix == ".gz" else open
    with opener(supplier_file, "rt", newline="") as handle:  # type: ignore[operator]
        names = [row["name"] for _, row in zip(range(50_000), csv.DictReader(handle))]
    chosen = []
    for _ in range(count):
        name = rng.choice(names) if rng.random() < 0.8 else rng.choice(PERSON_NAMES)
        if rng.random() < 0.3:  # a typo, as payment files have them
            position = rng.randrange(len(name))
            name = name[:position] + name[position + 1 :]
        chosen.append(name)
    return chosen


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(settings: Settings, names: list[str]) -> dict[str, float]:
    records = [
        OutgoingRecord(
            key=f"bench:{i}".encode(),
            value=json.dumps({"source_system": "bench", "source_record_id": str(i), "payee_name": name}).encode(),
        )
        for i, name in enumerate(names)
    ]
    input_ms: dict[str, int] = {}
    async with topic_reader(settings, settings.topic_enriched) as results:
        started = time.monotonic()
        async with kafka_producer(settings) as producer:
            await publish(producer, settings.topic_raw, records)
        published_s = time.monotonic() - started
        async with topic_reader(settings, settings.topic_raw) as raw:
            while len(input_ms) < len(records):
                for batch in (await raw.getmany(timeout_ms=500, max_records=10_000)).values():
                    for record in batch:
                        input_ms[record.key.decode()] = record.timestamp
        latencies_ms: dict[str, float] = {}
        last_result_ms = 0
        deadline = time.monotonic() + 600
        while len(latencies_ms) < len(records) and time.monotonic() < deadline:
            for batch in (await results.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in batch:
                    key = record.key.decode()
                    latencies_ms.setdefault(key, record.timestamp - input_ms[key])
                    last_result_ms = max(last_result_ms, record.timestamp)
    first_input_ms = min(input_ms.values())
    elapsed_s = (last_result_ms - first_input_ms) / 1000
    values = list(latencies_ms.values())
    return {
        "records": len(records),
        "results": len(values),
        "publish_s": published_s,
        "end_to_end_s": elapsed_s,
        "records_per_s": len(values) / elapsed_s if elapsed_s else float("nan"),
        "latency_p50_ms": percentile(values, 0.50),
        "latency_p99_ms": percentile(values, 0.99),
        "latency_mean_ms": statistics.fmean(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--suppliers", type=Path, default=default_supplier_file())
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="payee-bench-"))
    with EmbeddedTansu(log_path=work / "broker.log") as broker:
        settings = Settings(
            broker_url=broker.url,
            broker_flavor="tansu",
            partitions=args.partitions,
            data_dir=work / "worker",
            web_port=free_port(),
            log_level="WARNING",
        )
        asyncio.run(ensure_topics(settings))
        load_started = time.monotonic()
        asyncio.run(load_supplier_file(settings, args.suppliers, None))
        worker = WorkerProcess(settings, work / "worker.log").start()
        try:
            worker.wait_ready(timeout_s=300)
            ready_s = time.monotonic() - load_started
            figures = asyncio.run(measure(settings, payee_names(args.suppliers, args.records, random.Random(1))))
        finally:
            worker.stop()
    print(f"suppliers: {args.suppliers}  partitions: {args.partitions}  worker ready after load: {ready_s:.1f}s")
    for name, value in figures.items():
        print(f"{name:>18}: {value:,.1f}" if isinstance(value, float) else f"{name:>18}: {value:,}")


if __name__ == "__main__":
    main()
