"""``make bench``: every benchmark in one run, each printing its figures beside its peer's.

Only the tables reach the terminal. What the benchmarks' processes log on stderr (the peers'
own error logging, e.g. segment's retries of a 404 against the sandbox, which has no Segment
API; our clients' warnings; uvicorn's lines) is written to one file per run, named at the end
with its line count; a benchmark that fails has the end of its log printed under its table.

    python -m bench [--quick] [--verbose]      (--verbose: stderr through, as it comes)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

FULL = [
    ["-m", "bench.caller_cost", "--calls", "200000"],
    ["-m", "bench.throughput", "--events", "100000", "--gateway-events", "6000"],
    ["-m", "bench.queue_costs", "--events", "1000000", "--drain", "10000"],
    ["bench/bench_outbox.py", "--count", "20000", "--rounds", "5"],
    ["bench/bench_sandbox.py", "--duration", "5"],
    ["-m", "bench.importer", "--records", "200000", "--rss-factor", "10"],
    ["-m", "bench.relay", "--seconds", "5"],
]
QUICK = [
    ["-m", "bench.caller_cost", "--calls", "50000"],
    ["-m", "bench.throughput", "--events", "30000", "--gateway-events", "2000"],
    ["-m", "bench.queue_costs", "--events", "200000", "--drain", "5000"],
    ["bench/bench_outbox.py", "--count", "5000", "--rounds", "2"],
    ["bench/bench_sandbox.py", "--duration", "2"],
    ["-m", "bench.importer", "--records", "50000", "--rss-factor", "4", "--rounds", "1"],
    ["-m", "bench.relay", "--seconds", "3"],
]


def main() -> int:
    runs = QUICK if "--quick" in sys.argv else FULL
    verbose = "--verbose" in sys.argv
    failed = 0
    hidden = 0
    with tempfile.NamedTemporaryFile("w+", prefix="opencdp-bench-", suffix=".log",
                                     delete=False) as log:
        for args in runs:
            print(f"\n$ python {' '.join(args)}", flush=True)
            log.write(f"\n$ python {' '.join(args)}\n")
            log.flush()
            start = log.tell()
            started = time.perf_counter()
            code = subprocess.call([sys.executable, *args], stderr=None if verbose else log)
            print(f"({time.perf_counter() - started:.0f} s, exit {code})", flush=True)
            log.seek(start)
            lines = log.read().splitlines()
            hidden += len(lines)
            if code != 0 and lines:
                print("  its stderr, last lines:\n    " + "\n    ".join(lines[-30:]))
            failed += code != 0
    if not verbose:
        print(f"\n{hidden} lines of logging on stderr (the peers' and ours) are in {log.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
