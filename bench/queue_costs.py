"""Memory per queued event in the memory outbox, and how fast ``close()`` drains a backlog.

memory   RSS growth for 1,000,000 queued ``track()`` calls with 5 properties, no worker
         running (target <= 1 KB per event); segment-analytics-python's queue measured the
         same way for comparison.
drain    10,000 events queued while the worker is stopped, then ``close(timeout=30)``:
         seconds until every destination acknowledged them (target <= 1 s), for Customer.io
         only and for dual-write (the gateway takes one request per event).

    python -m bench.queue_costs [--events 1000000] [--drain 10000]
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import subprocess
import sys
import time

PROPS = {"order_id": "A-1001", "total": 99.5, "currency": "USD", "items": 3, "sku": "sku-1"}


def _rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def memory_child(which: str, events: int) -> None:
    """Runs in a fresh interpreter so the figures don't mix."""
    logging.getLogger("opencdp").setLevel(logging.CRITICAL)
    if which == "opencdp":
        from opencdp import Client

        client = Client(cdp_api_key="k", cdp_endpoint="http://127.0.0.1:9/g",
                        cdp_fallback_endpoints=[], start_worker=False, register_atexit=False,
                        max_queue_size=events + 1)
        client.identify("user_1", {"email": "u@example.com"})

        def call(i: int) -> None:
            client.track(f"user_{i % 1000}", "order_placed", dict(PROPS, n=i))
    else:
        import segment.analytics as segment_analytics

        peer = segment_analytics.Client("key", max_queue_size=events + 1, send=True,
                                        upload_interval=3600, upload_size=10**9)
        for consumer in peer.consumers or []:
            consumer.pause()

        def call(i: int) -> None:
            peer.track(user_id=f"user_{i % 1000}", event="order_placed",
                       properties=dict(PROPS, n=i))
    gc.collect()
    before = _rss_kb()
    for i in range(events):
        call(i)
    gc.collect()
    after = _rss_kb()
    print((after - before) * 1024 / events)


def memory(events: int) -> tuple[float, float]:
    out = []
    for which in ("opencdp", "segment"):
        result = subprocess.run(
            [sys.executable, "-m", "bench.queue_costs", "--child", which, "--events",
             str(events)], capture_output=True, text=True, check=True)
        out.append(float(result.stdout.strip().splitlines()[-1]))
    return out[0], out[1]


def drain(events: int, dual: bool) -> float:
    from opencdp import Client, CustomerIO
    from opencdp.sandbox import Sandbox

    with Sandbox(port=0, process=True) as sandbox:
        options: dict[str, object] = {}
        if dual:
            options = {"send_to_customer_io": True, "customer_io": CustomerIO(
                "sandbox-site", "sandbox-track-key", track_url=sandbox.track_url,
                app_url=sandbox.app_url)}
        else:
            sandbox.set_faults({"opencdp": {"down": True, "down_status": 500}})
            options = {"send_to_customer_io": True, "customer_io": CustomerIO(
                "sandbox-site", "sandbox-track-key", track_url=sandbox.track_url,
                app_url=sandbox.app_url)}
        client = Client(cdp_api_key="cdp-test-key", cdp_endpoint=sandbox.opencdp_url,
                        cdp_fallback_endpoints=[], register_atexit=False,
                        max_concurrent_requests=30, start_worker=False,
                        max_queue_size=events * 2, logger=logging.getLogger("bench.quiet"),
                        **options)  # type: ignore[arg-type]
        for i in range(events):
            client.track(f"user_{i % 1000}", "order_placed", PROPS)
        client.engine.dispatcher.start()
        start = time.perf_counter()
        if dual:
            client.close(timeout=60)
        else:
            while client.health().destinations["customerio"].delivered < events:
                time.sleep(0.001)
        elapsed = time.perf_counter() - start
        if not dual:
            client.close(timeout=0.1)
        stored = sandbox.stats()["customerio"]["events"]
        if stored != events:
            raise SystemExit(f"drain: sandbox stored {stored} of {events}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument("--child", choices=("opencdp", "segment"))
    args = parser.parse_args()
    if args.child:
        memory_child(args.child, args.events)
        return
    logging.getLogger("bench.quiet").setLevel(logging.CRITICAL)
    ours, theirs = memory(args.events)
    print(f"memory per queued event ({args.events:,} events): opencdp {ours:,.0f} B, "
          f"segment-analytics {theirs:,.0f} B, ratio {theirs / ours:.1f}x; target <= 1024 B "
          f"{'MET' if ours <= 1024 else 'NOT MET'}")
    cio = drain(args.drain, dual=False)
    both = drain(args.drain, dual=True)
    print(f"close() drain of {args.drain:,} events: Customer.io lane {cio:.2f} s; "
          f"dual-write (gateway: one request per event) {both:.2f} s; target <= 1 s "
          f"{'MET' if max(cio, both) <= 1 else 'NOT MET'}")


if __name__ == "__main__":
    main()
