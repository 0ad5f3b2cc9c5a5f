"""`payee-stream batch` over a large generated payment file: peak resident memory (index
included) and rows/s, with the full supplier list.

    .venv/bin/python bench/batch.py                      # 1,000,000 rows, CSV in, CSV out
    .venv/bin/python bench/batch.py --rows 100000 --out-format xlsx

The rows are the kind a payment file holds: noisy supplier names (the dev queries, some with a
typo), real payee strings, people's names and made-up businesses, half of them with a street
address, city, state and ZIP; in an AP export's headers. The batch runs as a child process so its
memory is measured alone; resident memory is sampled while it runs to show it stays flat.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
SAMPLE_EVERY_S = 5.0

STREETS = ["MAIN ST", "OAK AVE", "W MADISON ST", "N KING ST STE 304", "INDUSTRIAL PKWY", "E 5TH AVE APT 2"]
BUSINESS_WORDS = ["ACME", "SUMMIT", "RIVERSIDE", "PIONEER", "GOLDEN", "ATLAS", "BLUE", "CEDAR", "METRO", "PRIME"]
BUSINESS_KINDS = ["PLUMBING", "CONSULTING", "SUPPLY", "ROOFING", "CATERING", "LANDSCAPING", "ELECTRIC", "DENTAL"]
SUFFIXES = ["LLC", "INC", "CO", "CORP", "LTD", "", "& SONS"]


def _typo(name: str, rng: random.Random) -> str:
    if len(name) < 6:
        return name
    at = rng.randrange(1, len(name) - 1)
    return name[:at] + name[at + 1] + name[at] + name[at + 2 :]


def generate(path: Path, rows: int, seed: int = 13) -> None:
    import names  # test extra: census first and last names

    rng = random.Random(seed)
    # names draws from the census files on every call: pools, combined, are fast and varied enough.
    firsts = [names.get_first_name() for _ in range(3000)]
    lasts = [names.get_last_name() for _ in range(3000)]
    with (DATA / "dev_match_queries.csv").open(newline="") as handle:
        queries = [(r["name"], r["city"], r["state"]) for r in csv.DictReader(handle)]
    with (DATA / "real_payees_unlabelled.csv").open(newline="") as handle:
        real = [r["name"] for r in csv.DictReader(handle)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Vendor ID", "Vendor Name", "Remit To Address", "City", "State", "ZIP", "Invoice Amount"])
        for number in range(rows):
            kind = rng.random()
            city = state = ""
            if kind < 0.35:
                name, city, state = rng.choice(queries)
                name = _typo(name, rng) if rng.random() < 0.3 else name
            elif kind < 0.55:
                name = rng.choice(real)
            elif kind < 0.8:
                name = f"{rng.choice(firsts)} {rng.choice(lasts)}"
                name = name.upper() if rng.random() < 0.5 else name
            else:
                name = f"{rng.choice(BUSINESS_WORDS)} {rng.choice(BUSINESS_KINDS)} {rng.choice(SUFFIXES)}".strip()
            address = zip_code = ""
            if rng.random() < 0.5:
                address = f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"
                zip_code = f"{rng.randint(1001, 99950):05d}"
            writer.writerow([f"V{number}", name, address, city, state, zip_code, f"{rng.uniform(5, 50000):.2f}"])


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--suppliers", type=Path, default=DATA / "suppliers.csv.gz")
    parser.add_argument("--out-format", choices=["csv", "xlsx", "jsonl"], default="csv")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    source, out = work / "payments.csv", work / f"results.{args.out_format}"
    started = time.perf_counter()
    generate(source, args.rows)
    print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.0f} s ({source.stat().st_size / 2**20:.0f} MiB)")

    command = [sys.executable, "-m", "streams.cli", "batch", str(source), "--suppliers", str(args.suppliers),
               "--out", str(out)]
    started = time.perf_counter()
    with (work / "stderr.log").open("w") as stderr:
        child = subprocess.Popen(command, cwd=REPO, stderr=stderr)
        samples: list[tuple[float, int]] = []
        while child.poll() is None:
            samples.append((time.perf_counter() - started, _rss_kib(child.pid)))
            time.sleep(SAMPLE_EVERY_S)
    elapsed = time.perf_counter() - started
    log = (work / "stderr.log").read_text()
    if child.returncode != 0:
        print(log[-3000:], file=sys.stderr)
        return 1
    summary = json.loads(log.strip().splitlines()[-1])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mib = usage.ru_maxrss / 1024
    cpu_s = usage.ru_utime + usage.ru_stime
    print(f"batch of {summary['rows']:,} rows against {summary['suppliers']:,} suppliers: {elapsed:.0f} s wall")
    print(f"  index build          {summary['index_build_s']:.0f} s")
    print(f"  rows                 {summary['rows_s']:.0f} s, {summary['rows_per_s']:,.0f} rows/s")
    # On a shared machine wall-clock rates depend on the neighbours; CPU time says what the work costs.
    print(f"  CPU                  {cpu_s:.0f} s ({cpu_s / elapsed:.0%} of a core on average)")
    print(f"  outcomes             " + ", ".join(f"{k} {summary[k]:,}" for k in ("matched", "ambiguous", "none", "error") if k in summary))
    print(f"  peak RSS             {peak_mib:,.0f} MiB (target < 1,536 MiB, index included)")
    quarter = max(1, len(samples) // 4)
    print("  RSS while running    " + ", ".join(f"{rss / 1024:,.0f} MiB at {t:.0f} s" for t, rss in samples[quarter - 1 :: quarter]))
    print(f"  output               {out.stat().st_size / 2**20:,.0f} MiB {args.out_format}")
    if not args.keep:
        for path in work.iterdir():
            path.unlink()
        work.rmdir()
    return 0 if peak_mib < 1536 else 1


if __name__ == "__main__":
    sys.exit(main())
