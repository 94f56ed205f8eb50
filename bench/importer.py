"""``opencdp import``'s rate and memory: read + check + enqueue from NDJSON into SQLite.

rate    N records (one identify per five, the rest events with four properties, 1 % bad)
        read from an NDJSON file, checked by the guards and queued durably into a SQLite
        queue with checkpoints, by ``Importer.run`` as the command runs it, but with the
        engine's delivery stopped, so the figure is the importer's own (delivery then runs
        at the platforms' limits). Beside it, a plain ``orjson.loads`` loop over the same
        file: the floor any importer in Python starts from. Target: >= 50,000 records/s.
memory  peak RSS of the same import over a small file and over a file --rss-factor times
        larger, each in a fresh interpreter: flat memory means the two peaks are close.

    python -m bench.importer [--records 200000] [--rss-factor 10]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time

import orjson

TARGET = 50_000


def write_file(path: str, records: int) -> int:
    """An NDJSON file of ``records`` lines; returns its size in bytes."""
    with open(path, "wb") as out:
        for i in range(1, records + 1):
            user = f"user-{((i - 1) // 5) % 5000}"  # identified, then four events
            if i % 100 == 37:
                line = b'{"type": "track", "user_id": "u", "event": "x", "timestamp": "yday"}'
            elif i % 5 == 1:
                line = orjson.dumps({"type": "identify", "user_id": user, "timestamp":
                                     1_600_000_000 + i, "attributes": {
                                         "email": f"{user}@example.com", "plan": "pro",
                                         "created_at": 1_500_000_000 + i}})
            else:
                line = orjson.dumps({"type": "track", "user_id": user, "event": "order_placed",
                                     "timestamp": 1_600_000_000 + i, "properties": {
                                         "order_id": f"A-{i}", "total": i * 0.5,
                                         "currency": "USD", "items": i % 7}})
            out.write(line + b"\n")
    return os.path.getsize(path)


def plain_loop(path: str) -> float:
    """Records/s of ``orjson.loads`` over every line, nothing else."""
    loads = orjson.loads
    started = time.perf_counter()
    count = 0
    with open(path, "rb") as fh:
        for line in fh:
            loads(line)
            count += 1
    return count / (time.perf_counter() - started)


def run_import(path: str, workdir: str) -> tuple[float, int, int, float]:
    """``(records/s, queued, refused, seconds)`` of one import into a fresh SQLite queue."""
    from opencdp import Client
    from opencdp.migrate.checkpoint import Checkpoint
    from opencdp.migrate.importing import Importer, import_config
    from opencdp.migrate.sources import identify_source, read_files

    logging.getLogger("opencdp").setLevel(logging.CRITICAL)
    queue = os.path.join(workdir, f"queue-{time.monotonic_ns()}.db")
    env = {"CDP_API_KEY": "cdp-test-key", "OPENCDP_ENDPOINT": "http://127.0.0.1:9/gateway"}
    config = import_config(f"sqlite:///{queue}", "opencdp", False, env).with_options(
        start_worker=False, cdp_fallback_endpoints=[])
    client = Client(config=config)
    identity = identify_source(path)
    checkpoint = Checkpoint([identity.to_json()], {"bench": True})
    importer = Importer(client, checkpoint_path=os.path.join(workdir, "checkpoint.json"),
                        checkpoint=checkpoint)
    started = time.perf_counter()
    report = importer.run(read_files([path], ["ndjson"], identities=[identity]))
    seconds = time.perf_counter() - started
    client.close(timeout=1)
    return report.read / seconds, report.queued, report.refused_total, seconds


def rss_child(path: str, workdir: str) -> None:
    """In a fresh interpreter: import ``path``, print the peak RSS in KiB."""
    run_import(path, workdir)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_rss(path: str, workdir: str) -> int:
    result = subprocess.run([sys.executable, "-m", "bench.importer", "--child", path,
                             "--workdir", workdir], capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rss-factor", type=int, default=10,
                        help="the memory run's large file is this many times --records")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rss_child(args.child, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="opencdp-bench-import-") as workdir:
        path = os.path.join(workdir, "records.ndjson")
        size = write_file(path, args.records)
        plain = max(plain_loop(path) for _ in range(args.rounds))
        runs = [run_import(path, workdir) for _ in range(args.rounds)]
        rate, queued, refused, seconds = max(runs)
        print(f"{args.records:,} records, {size / 1e6:.1f} MB of NDJSON; best of {args.rounds}")
        print(f"{'':<40}{'records/s':>12}")
        print(f"{'plain orjson.loads loop':<40}{plain:>12,.0f}")
        print(f"{'opencdp import (read+check+enqueue)':<40}{rate:>12,.0f}")
        print(f"  queued {queued:,}, refused {refused:,}, {seconds:.2f} s; "
              f"{rate / plain:.2f} of the plain loop's rate")
        verdict = "met" if rate >= TARGET else f"MISSED by {TARGET - rate:,.0f} records/s"
        print(f"target >= {TARGET:,} records/s: {verdict}")
        if args.rss_factor > 1:
            big = os.path.join(workdir, "big.ndjson")
            big_size = write_file(big, args.records * args.rss_factor)
            small_rss, big_rss = peak_rss(path, workdir), peak_rss(big, workdir)
            print(f"peak RSS: {small_rss / 1024:.0f} MiB for {size / 1e6:.0f} MB, "
                  f"{big_rss / 1024:.0f} MiB for {big_size / 1e6:.0f} MB "
                  f"({big_rss / small_rss:.2f}x for {args.rss_factor}x the file)")


if __name__ == "__main__":
    main()
