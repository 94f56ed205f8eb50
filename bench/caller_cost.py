"""Caller cost of a background ``track()`` with 5 properties, next to segment-analytics-python.

Both clients run their background worker during the measurement (ours delivers into a sandbox
in another process; segment's posts to the same loopback server), because that is the cost a
request handler pays. Every call is timed on its own; the figures are the median and p99 of
those times, less the timer's own cost. A third line times ``Guards.track`` alone (the
call-time checks and the frozen snapshot of the properties), the guards' share of a call.

    python -m bench.caller_cost [--calls 200000]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from opencdp import Client, CustomerIO
from opencdp.guards import GuardPolicy, Guards
from opencdp.sandbox import Sandbox

PROPS = {"order_id": "A-1001", "total": 99.5, "currency": "USD", "items": 3, "coupon": None}
TARGET_US = 2.5


def measure(call: Callable[[int], None], calls: int) -> tuple[float, float]:
    """Median and p99 of the time each call took, in µs (the timer's own cost subtracted)."""
    clock = time.perf_counter_ns
    timer = statistics.median([-(clock() - clock()) for _ in range(10_000)])
    durations: list[int] = []
    gc.collect()
    for i in range(calls):
        t0 = clock()
        call(i)
        durations.append(clock() - t0)
    durations.sort()
    median = (statistics.median(durations) - timer) / 1000
    return median, (durations[int(len(durations) * 0.99) - 1] - timer) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    with Sandbox(port=0, process=True) as sandbox:
        client = Client(
            cdp_api_key="cdp-test-key", cdp_endpoint=sandbox.opencdp_url,
            cdp_fallback_endpoints=[], send_to_customer_io=True,
            customer_io=CustomerIO("sandbox-site", "sandbox-track-key",
                                   track_url=sandbox.track_url, app_url=sandbox.app_url),
            max_queue_size=args.calls * 2, register_atexit=False,
        )
        client.identify("user_1", {"email": "u1@example.com"})
        client.track("user_1", "order_placed", PROPS)

        def ours(i: int) -> None:
            client.track("user_1", "order_placed", PROPS)

        ours_median, ours_p99 = measure(ours, args.calls)
        client.close(timeout=1)

        guards = Guards(GuardPolicy(), lambda finding: None)
        guards.identify("user_1", {"email": "u1@example.com"}, None)

        def checks(i: int) -> None:
            guards.track("user_1", "order_placed", PROPS, None)

        guards_median, guards_p99 = measure(checks, args.calls)

        import segment.analytics as segment_analytics

        peer = segment_analytics.Client(
            "write-key", host=sandbox.opencdp_url.rsplit("/gateway", 1)[0],
            max_queue_size=args.calls * 2, on_error=lambda *_: None,
        )

        def theirs(i: int) -> None:
            peer.track(user_id="user_1", event="order_placed", properties=PROPS)

        peer_median, peer_p99 = measure(theirs, args.calls)
        peer.shutdown = lambda: None  # type: ignore[method-assign]
        for consumer in peer.consumers or []:
            consumer.pause()

    print(f"{'client':<28}{'median µs':>12}{'p99 µs':>10}")
    print(f"{'opencdp Client.track':<28}{ours_median:>12.2f}{ours_p99:>10.2f}")
    print(f"{'  of which Guards.track':<28}{guards_median:>12.2f}{guards_p99:>10.2f}")
    print(f"{'segment-analytics track':<28}{peer_median:>12.2f}{peer_p99:>10.2f}")
    print(f"opencdp is {peer_median / ours_median:.1f}x faster per call (target >= 10x); "
          f"median {ours_median:.2f} µs vs target <= {TARGET_US} µs: "
          f"{'MET' if ours_median <= TARGET_US else 'NOT MET'}")


if __name__ == "__main__":
    main()
