"""``payee-stream dev``: the whole pipeline on this machine, from nothing to visible results.

Starts the embedded Tansu broker, loads suppliers, starts a worker process, publishes sample
payees and prints their results as they arrive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from streams.embedded_broker import EmbeddedTansu, free_port
from streams.kafka_io import ensure_topics, publish_payee_file, topic_reader
from streams.settings import Settings
from streams.supplier_loading import load_supplier_file

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_SUPPLIERS = REPO_ROOT.parent / "shared" / "data" / "suppliers.csv.gz"
BUNDLED_SUPPLIERS = REPO_ROOT / "domain" / "data" / "sample_suppliers.csv.gz"
BUNDLED_PAYEES = Path(__file__).resolve().parent / "samples" / "payees.jsonl"


def default_supplier_file() -> Path:
    return SHARED_SUPPLIERS if SHARED_SUPPLIERS.exists() else BUNDLED_SUPPLIERS


class WorkerProcess:
    """A ``payee-stream worker`` child process with its own settings, logging to a file."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.settings.as_env()}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker"],
            env=env,
            stdout=log,
            stderr=log,
            cwd=REPO_ROOT,
        )
        return self

    def readiness(self) -> dict[str, object] | None:
        url = f"http://{self.settings.web_host}:{self.settings.web_port}/ready"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except Exception:
            return None

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}; see {self.log_path}")
            status = self.readiness()
            if status and status.get("ready"):
                return
            time.sleep(0.25)
        raise TimeoutError(f"worker not ready within {timeout_s}s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def result_line(result: dict[str, object]) -> str:
    match = result["match"]
    classification = result["classification"]
    if match["decision"] == "matched":
        supplier = f"{match['supplier_id']} ({match['score']:.2f} {match['match_type']})"
    elif match["decision"] == "ambiguous":
        supplier = "ambiguous: several suppliers fit"
    else:
        supplier = "no supplier"
    entity = f"{classification['entity_type']}/{classification['subtype'] or '-'}"
    return (
        f"{result['input']['payee_name'][:38]:<38} {entity:<30} "
        f"{classification['confidence']:.2f} {classification['method']:<8} {supplier:<34} {result['status']}"
    )


async def show_results(settings: Settings, expected: int, timeout_s: float) -> tuple[int, int]:
    """Print results (and dead letters) until ``expected`` records are accounted for."""
    results = dead = 0
    deadline = time.monotonic() + timeout_s
    async with topic_reader(settings, settings.topic_enriched) as enriched, topic_reader(settings, settings.topic_dlq) as dlq:
        print(f"{'payee':<38} {'entity/subtype':<30} conf method   {'supplier (score type)':<34} status")
        while results + dead < expected and time.monotonic() < deadline:
            for records in (await enriched.getmany(timeout_ms=200)).values():
                for record in records:
                    results += 1
                    print(result_line(json.loads(record.value)), flush=True)
            for records in (await dlq.getmany(timeout_ms=50)).values():
                for record in records:
                    dead += 1
                    letter = json.loads(record.value)
                    print(f"{'[dead letter]':<38} {letter['error_type']}: {letter['error_message'][:80]}", flush=True)
    return results, dead


def run_dev(base: Settings, args: argparse.Namespace) -> int:
    supplier_file = Path(args.suppliers) if args.suppliers else default_supplier_file()
    payee_file = Path(args.payees) if args.payees else BUNDLED_PAYEES
    work_dir = Path(tempfile.mkdtemp(prefix="payee-stream-dev-"))
    with EmbeddedTansu(log_path=work_dir / "broker.log") as broker:
        settings = base.model_copy(
            update={
                "broker_url": broker.url,
                "broker_flavor": "tansu",
                "data_dir": work_dir / "worker",
                "web_port": free_port(),
            }
        )
        print(f"broker {broker.bootstrap} (embedded Tansu, in memory); work dir {work_dir}", file=sys.stderr)
        asyncio.run(ensure_topics(settings))
        print(f"loading suppliers from {supplier_file}", file=sys.stderr)
        report = asyncio.run(load_supplier_file(settings, supplier_file, None))
        print(report.summary(), file=sys.stderr)
        worker = WorkerProcess(settings, work_dir / "worker.log").start()
        try:
            worker.wait_ready(timeout_s=180)
            print(f"worker ready: http://{settings.web_host}:{settings.web_port}/ready, /metrics", file=sys.stderr)
            payee_count = sum(1 for line in payee_file.read_text().splitlines() if line.strip())
            asyncio.run(publish_payee_file(settings, payee_file, settings.topic_raw))
            results, dead = asyncio.run(show_results(settings, payee_count, timeout_s=120))
            print(f"\n{results} enriched, {dead} dead-lettered of {payee_count} published", file=sys.stderr)
            if args.keep_running:
                print("running; Ctrl-C to stop", file=sys.stderr)
                try:
                    signal.pause()
                except KeyboardInterrupt:
                    pass
            return 0 if results + dead == payee_count else 1
        finally:
            worker.stop()
