"""Shared set-up for the end-to-end benchmarks: embedded broker, suppliers, one worker process."""

from __future__ import annotations

import asyncio
import os
import csv
import gzip
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from streams.dev import WorkerProcess  # noqa: E402
from streams.embedded_broker import EmbeddedTansu, free_port  # noqa: E402
from streams.kafka_io import ensure_topics  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.supplier_loading import load_supplier_file  # noqa: E402

PERSON_NAMES = ["JOHN SMITH", "Maria Garcia", "LEE, JENNIFER", "Robert T. Johnson", "Patricia Brown"]


@dataclass
class Rig:
    settings: Settings
    worker: WorkerProcess
    ready_after_s: float


@contextmanager
def running_rig(suppliers: Path, partitions: int) -> Iterator[Rig]:
    work = Path(tempfile.mkdtemp(prefix="payee-bench-"))
    with EmbeddedTansu(log_path=work / "broker.log") as broker:
        settings = Settings(
            broker_url=broker.url,
            broker_flavor="tansu",
            partitions=partitions,
            data_dir=work / "worker",
            web_port=free_port(),
            log_level="WARNING",
        )
        asyncio.run(ensure_topics(settings))
        started = time.monotonic()
        asyncio.run(load_supplier_file(settings, suppliers, None))
        worker = WorkerProcess(settings, work / "worker.log").start()
        try:
            worker.wait_ready(timeout_s=300)
            yield Rig(settings, worker, time.monotonic() - started)
        finally:
            worker.stop()


def payee_names(supplier_file: Path, count: int, seed: int = 1) -> list[str]:
    """Supplier names (with a typo in 30%) and person names, as payment files have them."""
    rng = random.Random(seed)
    opener = gzip.open if supplier_file.suffix == ".gz" else open
    with opener(supplier_file, "rt", newline="") as handle:  # type: ignore[operator]
        names = [row["name"] for _, row in zip(range(50_000), csv.DictReader(handle))]
    chosen = []
    for _ in range(count):
        name = rng.choice(names) if rng.random() < 0.8 else rng.choice(PERSON_NAMES)
        if rng.random() < 0.3:
            position = rng.randrange(len(name))
            name = name[:position] + name[position + 1 :]
        chosen.append(name)
    return chosen


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
