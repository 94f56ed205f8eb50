"""A child process for crash tests: enqueue numbered events, report each one that returned.

Run as ``python producer.py QUEUE_URL OPENCDP_URL TRACK_URL APP_URL ACKS_FILE COUNT [deliver]``.
Each ``track()`` that returned is written to ACKS_FILE (one write per call: it reaches the
kernel before the next call, so it survives SIGKILL of this process).
"""

from __future__ import annotations

import os
import sys

from opencdp import Client, CustomerIO


def main() -> None:
    queue, opencdp_url, track_url, app_url, acks, count = sys.argv[1:7]
    deliver = len(sys.argv) > 7 and sys.argv[7] == "deliver"
    client = Client(
        cdp_api_key="cdp-test-key", cdp_endpoint=opencdp_url, cdp_fallback_endpoints=[],
        send_to_customer_io=True,
        customer_io=CustomerIO("sandbox-site", "sandbox-track-key", track_url=track_url,
                               app_url=app_url),
        queue=queue, start_worker=deliver, register_atexit=False, timeout=1.0,
    )
    fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for seq in range(int(count)):
        client.track(f"user_{seq % 50}", "crash_event", {"seq": seq})
        os.write(fd, f"{seq}\n".encode())
    os.close(fd)
    client.close(timeout=30)


if __name__ == "__main__":
    main()
