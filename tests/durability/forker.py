"""The ``gunicorn --preload`` shape: a parent builds a client and tracks, then forks workers
that track and exit normally (atexit drains them).

Run as ``python forker.py OPENCDP_URL TRACK_URL WORKERS [asyncio]``; with ``asyncio`` uvloop
is hidden so the engine runs on the standard loop. Worker ``w`` tracks ``w-0``..``w-2``; the
parent tracks ``parent-0``..``parent-9`` before and while forking. At most 16 children live
at once. Prints the children's non-zero exit codes, if any.
"""

from __future__ import annotations

import os
import sys

if len(sys.argv) > 4 and sys.argv[4] == "asyncio":
    sys.modules["uvloop"] = None  # type: ignore[assignment]

from opencdp import Client, CustomerIO
from opencdp.config import RetryConfig

PER_WORKER = 3


def main() -> None:
    opencdp_url, track_url, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = Client(
        cdp_api_key="cdp-test-key", cdp_endpoint=opencdp_url, cdp_fallback_endpoints=[],
        customer_io=CustomerIO("sandbox-site", "sandbox-track-key", track_url=track_url),
        retry=RetryConfig(base_delay=0.01, max_delay=0.1), shutdown_timeout=20.0,
    )
    live: set[int] = set()
    failed: list[int] = []
    for w in range(workers):
        client.track("parent", "forked", {"seq": f"parent-{w % 10}", "w": w})
        while len(live) >= 16:
            pid, status = os.wait()
            live.discard(pid)
            if status:
                failed.append(status)
        pid = os.fork()
        if pid == 0:
            for i in range(PER_WORKER):
                client.track(f"worker-{w}", "forked", {"seq": f"{w}-{i}"})
            sys.exit(0)  # a normal exit: atexit closes the client, draining it
        live.add(pid)
    for pid in live:
        _, status = os.waitpid(pid, 0)
        if status:
            failed.append(status)
    client.close(20)
    print("failed", failed, flush=True)


if __name__ == "__main__":
    main()
