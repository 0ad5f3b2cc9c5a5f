"""End-to-end pipeline benchmark on the embedded broker with one worker process.

Publishes N payee records (default 20,000) as fast as the producer goes, then reads
``payees.enriched`` and prints records/s end to end and p50/p99 latency. Latency is the
result's broker timestamp minus the input's (both stamped by producers on this machine).

    python bench/pipeline.py [--records 20000] [--suppliers PATH] [--partitions 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from harness import payee_names, percentile, running_rig

from streams.dev import default_supplier_file
from streams.kafka_io import OutgoingRecord, kafka_producer, publish, topic_reader
from streams.settings import Settings


async def measure(settings: Settings, names: list[str]) -> dict[str, float]:
    records = [
        OutgoingRecord(
            key=f"bench:{i}".encode(),
            value=json.dumps({"source_system": "bench", "source_record_id": str(i), "payee_name": name}).encode(),
        )
        for i, name in enumerate(names)
    ]
    input_ms: dict[str, int] = {}
    latencies_ms: dict[str, float] = {}
    async with topic_reader(settings, settings.topic_enriched) as results:
        started = time.monotonic()
        async with kafka_producer(settings) as producer:
            await publish(producer, settings.topic_raw, records)
        publish_s = time.monotonic() - started
        async with topic_reader(settings, settings.topic_raw) as raw:
            while len(input_ms) < len(records):
                for batch in (await raw.getmany(timeout_ms=500, max_records=10_000)).values():
                    input_ms.update((record.key.decode(), record.timestamp) for record in batch)
        last_result_ms = 0
        deadline = time.monotonic() + 900
        while len(latencies_ms) < len(records) and time.monotonic() < deadline:
            for batch in (await results.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in batch:
                    key = record.key.decode()
                    latencies_ms.setdefault(key, record.timestamp - input_ms[key])
                    last_result_ms = max(last_result_ms, record.timestamp)
    elapsed_s = (last_result_ms - min(input_ms.values())) / 1000
    values = list(latencies_ms.values())
    return {
        "records published": len(records),
        "results received": len(values),
        "publish seconds": publish_s,
        "end-to-end seconds": elapsed_s,
        "records/s end to end": len(values) / elapsed_s,
        "latency p50 ms": percentile(values, 0.50),
        "latency p99 ms": percentile(values, 0.99),
        "latency mean ms": statistics.fmean(values),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--suppliers", type=Path, default=default_supplier_file())
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    with running_rig(args.suppliers, args.partitions) as rig:
        figures = asyncio.run(measure(rig.settings, payee_names(args.suppliers, args.records)))
    print(f"suppliers: {args.suppliers}  partitions: {args.partitions}  load+ready: {rig.ready_after_s:.1f}s")
    for name, value in figures.items():
        print(f"{name:>22}: {value:,.1f}" if isinstance(value, float) else f"{name:>22}: {value:,}")


if __name__ == "__main__":
    main()
