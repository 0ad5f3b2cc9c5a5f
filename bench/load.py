"""Load benchmark: sustained load at a target rate, or a step load until saturation.

Prints achieved rate, p50/p95/p99 end-to-end latency, max consumer lag and worker RSS over time,
and draws them to a PNG (bench/out/load-<mode>.png). Latency is the result's broker timestamp
(stamped by the worker's producer) minus the input's CreateTime (stamped here when sent).

    python bench/load.py sustained --rate 500 --duration 60
    python bench/load.py sustained --rate 1500 --records 1000000     # memory trend over 1M records
    python bench/load.py step --start 250 --step 250 --step-seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from harness import Rig, payee_names, percentile, rss_mib, running_rig

from streams.dev import default_supplier_file
from streams.kafka_io import kafka_producer, topic_reader

LAG_LINE = re.compile(r'^payee_stream_consumer_lag\{partition="\d+",topic="([^"]+)"\} ([0-9.e+]+)$', re.M)
OUT_DIR = Path(__file__).resolve().parent / "out"
TICK_S = 0.1
# A step whose achieved rate falls below this share of its target means the worker is saturated.
SATURATED_BELOW = 0.8


@dataclass
class Sample:
    at_s: float
    target_rate: float
    published: int
    received: int
    lag: float
    rss_mib: float


@dataclass
class Run:
    started: float = field(default_factory=time.monotonic)
    target_rate: float = 0.0
    published: int = 0
    received: int = 0
    producing: bool = True
    sent_at_ms: dict[str, int] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (seconds into run, ms)
    samples: list[Sample] = field(default_factory=list)
    saturated_at: float | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def consumer_lag(rig: Rig) -> float:
    url = f"http://{rig.settings.web_host}:{rig.settings.web_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return float("nan")
    return sum(float(value) for topic, value in LAG_LINE.findall(text) if topic == rig.settings.topic_raw)


async def produce(rig: Rig, run: Run, schedule: list[tuple[float, float]], names: list[str], limit: int | None) -> None:
    """Publish on ``schedule`` — (records/s, seconds) steps — in 100 ms ticks."""
    async with kafka_producer(rig.settings) as producer:
        carry = 0.0
        for rate, seconds in schedule:
            run.target_rate = rate
            step_start = run.elapsed()
            step_end = time.monotonic() + seconds
            while time.monotonic() < step_end and (limit is None or run.published < limit):
                tick_start = time.monotonic()
                carry += rate * TICK_S
                count, carry = int(carry), carry - int(carry)
                now_ms = int(time.time() * 1000)
                for _ in range(count):
                    number = run.published
                    key = f"load:{number}"  # the record key the worker derives: source_system:source_record_id
                    value = {"source_system": "load", "source_record_id": str(number), "payee_name": names[number % len(names)]}
                    await producer.send(rig.settings.topic_raw, key=key.encode(), value=json.dumps(value).encode(), timestamp_ms=now_ms)
                    run.sent_at_ms[key] = now_ms
                    run.published += 1
                await asyncio.sleep(max(0.0, TICK_S - (time.monotonic() - tick_start)))
            achieved = window(run, step_start + seconds * 0.25, run.elapsed())["achieved/s"]
            if len(schedule) > 1 and achieved < SATURATED_BELOW * rate:
                run.saturated_at = rate
                break
        await producer.flush()
    run.producing = False


async def collect(rig: Rig, run: Run, drain_timeout_s: float) -> None:
    async with topic_reader(rig.settings, rig.settings.topic_enriched) as results:
        drain_deadline: float | None = None
        while run.producing or run.received < run.published:
            if not run.producing:
                drain_deadline = drain_deadline or time.monotonic() + drain_timeout_s
                if time.monotonic() > drain_deadline:
                    break
            for batch in (await results.getmany(timeout_ms=200, max_records=10_000)).values():
                for record in batch:
                    sent = run.sent_at_ms.pop(record.key.decode(), None)
                    if sent is not None:  # a redelivered duplicate has no send time left
                        run.received += 1
                        run.latencies.append((run.elapsed(), record.timestamp - sent))


async def sample(rig: Rig, run: Run) -> None:
    assert rig.worker.process is not None
    while run.producing or run.received < run.published:
        lag = await asyncio.to_thread(consumer_lag, rig)
        run.samples.append(Sample(run.elapsed(), run.target_rate, run.published, run.received, lag, rss_mib(rig.worker.process.pid)))
        await asyncio.sleep(1.0)


async def drive(rig: Rig, schedule: list[tuple[float, float]], names: list[str], limit: int | None) -> Run:
    run = Run()
    sampler = asyncio.create_task(sample(rig, run))
    await asyncio.gather(produce(rig, run, schedule, names, limit), collect(rig, run, drain_timeout_s=120))
    sampler.cancel()
    return run


def window(run: Run, start_s: float, end_s: float) -> dict[str, float]:
    latencies = [ms for at, ms in run.latencies if start_s <= at < end_s]
    lags = [s.lag for s in run.samples if start_s <= s.at_s < end_s and s.lag == s.lag]
    return {
        "achieved/s": len(latencies) / max(end_s - start_s, 1e-9),
        "p50 ms": percentile(latencies, 0.50),
        "p95 ms": percentile(latencies, 0.95),
        "p99 ms": percentile(latencies, 0.99),
        "max lag": max(lags, default=float("nan")),
    }


def draw(run: Run, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    seconds = [s.at_s for s in run.samples]
    rates = [0.0] + [
        (b.received - a.received) / max(b.at_s - a.at_s, 1e-9) for a, b in zip(run.samples, run.samples[1:])
    ]
    axes[0].plot(seconds, rates, label="achieved")
    axes[0].plot(seconds, [s.target_rate for s in run.samples], "--", label="target")
    axes[0].set_ylabel("records/s")
    axes[0].legend()
    buckets: dict[int, list[float]] = {}
    for at, ms in run.latencies:
        buckets.setdefault(int(at), []).append(ms)
    keys = sorted(buckets)
    for fraction, label in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        axes[1].plot(keys, [percentile(buckets[k], fraction) for k in keys], label=label)
    axes[1].set_ylabel("latency ms")
    axes[1].set_yscale("log")
    axes[1].legend()
    axes[2].plot(seconds, [s.lag for s in run.samples])
    axes[2].set_ylabel("consumer lag")
    axes[3].plot(seconds, [s.rss_mib for s in run.samples])
    axes[3].set_ylabel("worker RSS MiB")
    axes[3].set_xlabel("seconds")
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)


def rss_trend(run: Run) -> str:
    """RSS at 25/50/75/100% of the run: a flat tail means no growth trend."""
    samples = run.samples
    if not samples:
        return "n/a"
    points = [samples[min(len(samples) - 1, int(len(samples) * q))] for q in (0.25, 0.5, 0.75, 0.999)]
    return " → ".join(f"{p.rss_mib:.0f} MiB @ {p.received:,}" for p in points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["sustained", "step"])
    parser.add_argument("--rate", type=float, default=500, help="sustained: records/s")
    parser.add_argument("--duration", type=float, default=60, help="sustained: seconds")
    parser.add_argument("--records", type=int, help="sustained: stop after this many records instead")
    parser.add_argument("--start", type=float, default=250, help="step: first rate")
    parser.add_argument("--step", type=float, default=250, help="step: increment")
    parser.add_argument("--step-seconds", type=float, default=20)
    parser.add_argument("--max-rate", type=float, default=10_000)
    parser.add_argument("--suppliers", type=Path, default=default_supplier_file())
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()

    names = payee_names(args.suppliers, 20_000)
    if args.mode == "sustained":
        seconds = args.records / args.rate * 1.5 if args.records else args.duration
        schedule = [(args.rate, seconds)]
    else:
        rates = []
        rate = args.start
        while rate <= args.max_rate:
            rates.append(rate)
            rate += args.step
        schedule = [(r, args.step_seconds) for r in rates]

    with running_rig(args.suppliers, args.partitions) as rig:
        run = asyncio.run(drive(rig, schedule, names, args.records))
    print(f"mode: {args.mode}  suppliers: {args.suppliers}  partitions: {args.partitions}  one worker")
    print(f"published {run.published:,}, results {run.received:,}")
    if args.mode == "sustained":
        # Skip the first 10% as warm-up.
        total = run.samples[-1].at_s if run.samples else 0
        figures = window(run, total * 0.1, total)
        print("  ".join(f"{name} {value:,.1f}" for name, value in figures.items()))
    else:
        start = 0.0
        for rate, seconds in schedule:
            if start > (run.samples[-1].at_s if run.samples else 0):
                break
            figures = window(run, start + seconds * 0.25, start + seconds)  # settle in each step
            print(f"target {rate:>7,.0f}/s  " + "  ".join(f"{n} {v:,.1f}" for n, v in figures.items()))
            start += seconds
        print(f"saturated at target {run.saturated_at:,.0f}/s" if run.saturated_at else "not saturated")
    print(f"worker RSS: {rss_trend(run)}")
    png = OUT_DIR / f"load-{args.mode}.png"
    draw(run, png, f"payee-stream {args.mode} load, one worker")
    print(f"chart: {png}")


if __name__ == "__main__":
    main()
