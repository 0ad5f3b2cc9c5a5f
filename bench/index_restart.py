"""Time to ready for a worker with the full supplier list: cold (index built from the compacted
topic) and after a restart (local snapshot loaded, only changes read from the topic).

    python bench/index_restart.py [--suppliers PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from harness import rss_mib

from streams.dev import WorkerProcess, default_supplier_file
from streams.embedded_broker import EmbeddedTansu, free_port
from streams.kafka_io import ensure_topics
from streams.settings import Settings
from streams.supplier_loading import load_supplier_file


def time_to_ready(settings: Settings, log: Path) -> tuple[float, float, int]:
    started = time.monotonic()
    worker = WorkerProcess(settings, log).start()
    worker.wait_ready(timeout_s=600)
    seconds = time.monotonic() - started
    assert worker.process is not None
    status = worker.readiness() or {}
    rss = rss_mib(worker.process.pid)
    worker.stop()
    return seconds, rss, int(status.get("suppliers", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suppliers", type=Path, default=default_supplier_file())
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="payee-restart-"))
    with EmbeddedTansu(log_path=work / "broker.log") as broker:
        settings = Settings(
            broker_url=broker.url, broker_flavor="tansu", data_dir=work / "worker", web_port=free_port(), log_level="WARNING"
        )
        asyncio.run(ensure_topics(settings))
        asyncio.run(load_supplier_file(settings, args.suppliers, None))
        cold = time_to_ready(settings, work / "cold.log")
        warm = time_to_ready(settings, work / "warm.log")
    print(f"suppliers: {cold[2]:,} from {args.suppliers}")
    print(f"cold start (index from topic):      ready in {cold[0]:6.1f} s, worker RSS {cold[1]:,.0f} MiB")
    print(f"restart (snapshot + topic changes): ready in {warm[0]:6.1f} s, worker RSS {warm[1]:,.0f} MiB")


if __name__ == "__main__":
    main()
