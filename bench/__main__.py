"""``make bench``: every benchmark in one run, each printing its figures beside its peer's.

    python -m bench [--quick]
"""

from __future__ import annotations

import subprocess
import sys
import time

FULL = [
    ["-m", "bench.caller_cost", "--calls", "200000"],
    ["-m", "bench.throughput", "--events", "100000", "--gateway-events", "6000"],
    ["-m", "bench.queue_costs", "--events", "1000000", "--drain", "10000"],
    ["bench/bench_outbox.py", "--count", "20000", "--rounds", "5"],
    ["bench/bench_sandbox.py", "--duration", "5"],
    ["-m", "bench.importer", "--records", "200000", "--rss-factor", "10"],
]
QUICK = [
    ["-m", "bench.caller_cost", "--calls", "50000"],
    ["-m", "bench.throughput", "--events", "30000", "--gateway-events", "2000"],
    ["-m", "bench.queue_costs", "--events", "200000", "--drain", "5000"],
    ["bench/bench_outbox.py", "--count", "5000", "--rounds", "2"],
    ["bench/bench_sandbox.py", "--duration", "2"],
    ["-m", "bench.importer", "--records", "50000", "--rss-factor", "4", "--rounds", "1"],
]


def main() -> int:
    runs = QUICK if "--quick" in sys.argv else FULL
    failed = 0
    for args in runs:
        print(f"\n$ python {' '.join(args)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, *args])
        print(f"({time.perf_counter() - started:.0f} s, exit {code})", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
