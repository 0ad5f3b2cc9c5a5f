"""End-to-end pipeline benchmark on the embedded broker with one worker process, side by side
with the core alone.

Core: the same records through the worker's core call (``raw_record_outcome``: decode, match,
classify, decide, serialise every output) in this process, without a broker. Pipeline: publishes
the N payee records (default 20,000) as fast as the producer goes, then reads ``payees.enriched``
and prints records/s end to end and p50/p99 latency. Latency is the result's broker timestamp
minus the input's (both stamped by producers on this machine). The target: the pipeline does at
least 80% of the core's records/s.

    python bench/pipeline.py [--records 20000] [--suppliers PATH] [--partitions 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import cpu_seconds, payee_names, percentile, running_rig

from domain.batch import build_index
from domain.outcome import CoreConfig, raw_record_outcome
from domain.pipeline import Thresholds, current_versions
from schemas.events import SourcePosition
from streams.dev import default_supplier_file
from streams.kafka_io import OutgoingRecord, kafka_producer, publish, topic_reader
from streams.settings import Settings


def bench_records(names: list[str]) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(
            key=f"bench:{i}".encode(),
            value=json.dumps({"source_system": "bench", "source_record_id": str(i), "payee_name": name}).encode(),
        )
        for i, name in enumerate(names)
    ]


def measure_core(settings: Settings, suppliers: Path, records: list[OutgoingRecord]) -> dict[str, float]:
    """The worker's core call per record, with no broker: the ceiling the pipeline is held to."""
    index = build_index(suppliers, settings.match_threshold, settings.match_ambiguity_margin, no_progress)
    thresholds = Thresholds(review=settings.review_threshold, llm=settings.llm_threshold)
    config = CoreConfig(thresholds, settings.max_record_bytes, settings.max_message_bytes, llm_enabled=False)

    def versions_of(index):  # type: ignore[no-untyped-def]
        return current_versions(index, "bench", thresholds)

    started = time.perf_counter()
    outputs = 0
    for offset, record in enumerate(records):
        source = SourcePosition(topic=settings.topic_raw, partition=offset % 4, offset=offset)
        outputs += len(raw_record_outcome(record.key, record.value, source, None, index, versions_of, config).outputs)
    elapsed_s = time.perf_counter() - started
    return {"core records/s": len(records) / elapsed_s, "core outputs per record": outputs / len(records)}


@contextmanager
def no_progress(total: int | None, label: str) -> Iterator[object]:
    class Bar:
        def update(self, n: int = 1) -> None:
            return None

    yield Bar()


async def measure(settings: Settings, records: list[OutgoingRecord]) -> dict[str, float]:
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
    records = bench_records(payee_names(args.suppliers, args.records))
    with running_rig(args.suppliers, args.partitions) as rig:
        assert rig.worker.process is not None
        cpu_before = cpu_seconds(rig.worker.process.pid)
        figures = asyncio.run(measure(rig.settings, records))
        worker_cpu_s = cpu_seconds(rig.worker.process.pid) - cpu_before
        # While the worker idles: both figures come from one run on the same machine state.
        figures.update(measure_core(rig.settings, args.suppliers, records))
    figures["pipeline / core"] = figures["records/s end to end"] / figures["core records/s"]
    # Less sensitive to a busy machine than wall-clock rates: CPU the worker spent per record
    # (core, consuming, delivering, committing) against the core's own time per record.
    figures["worker CPU ms/record"] = worker_cpu_s * 1000 / len(records)
    figures["core ms/record"] = 1000 / figures["core records/s"]
    figures["core share of worker CPU"] = figures["core ms/record"] / figures["worker CPU ms/record"]
    print(f"suppliers: {args.suppliers}  partitions: {args.partitions}  load+ready: {rig.ready_after_s:.1f}s")
    for name, value in figures.items():
        print(f"{name:>24}: {value:,.2f}" if isinstance(value, float) else f"{name:>24}: {value:,}")


if __name__ == "__main__":
    main()
