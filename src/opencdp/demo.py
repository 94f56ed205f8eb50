"""``make demo``: a dual-write workload through the client into the sandbox, and its report.

Starts the sandbox in this process, points a dual-writing ``Client`` at it, injects a little
trouble into both emulations (so retries show), runs identifies, events, devices,
one email and one push with a progress bar, then prints what reached each platform and the
client's health snapshot.
"""

from __future__ import annotations

import json
import random
import sys
import time

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from . import Client, CustomerIO
from .config import RetryConfig
from .sandbox import Sandbox

USERS = 200
EVENTS_PER_USER = 10
EVENT_NAMES = ("page_viewed", "item_added", "checkout_started", "purchase_completed")


def main(argv: list[str] | None = None) -> None:
    show_health = "--health" in (sys.argv[1:] if argv is None else argv)
    console = Console()
    rng = random.Random(7)
    with Sandbox(port=0) as sandbox:
        console.print(f"[bold]Sandbox[/bold] at {sandbox.admin_url.rsplit('/_sandbox', 1)[0]}")
        sandbox.set_faults({
            "customerio": {"error_rate": 0.2, "statuses": [500, 502], "seed": 7},
            "opencdp": {"error_rate": 0.02, "statuses": [500], "seed": 8},
        })
        client = Client(
            cdp_api_key="cdp-test-key",
            cdp_endpoint=sandbox.opencdp_url,
            cdp_fallback_endpoints=[],
            send_to_customer_io=True,
            customer_io=CustomerIO("sandbox-site", "sandbox-track-key",
                                   app_api_key="sandbox-app-key",
                                   track_url=sandbox.track_url, app_url=sandbox.app_url),
            retry=RetryConfig(base_delay=0.05, max_delay=0.5),
            register_atexit=False,
        )
        calls = USERS * (2 + EVENTS_PER_USER)
        started = time.perf_counter()
        with Progress(console=console) as progress:
            task = progress.add_task("dual-writing", total=calls + 2)
            for n in range(USERS):
                user = f"user_{n:04d}"
                client.identify(user, {"email": f"{user}@example.com", "plan": "pro",
                                       "created_at": 1_700_000_000 + n})
                client.register_device(user, f"device-{n}", rng.choice(("ios", "android")),
                                       fcm_token=f"fcm-{n}")
                for _ in range(EVENTS_PER_USER):
                    client.track(user, rng.choice(EVENT_NAMES), {"value": rng.randint(1, 100)})
                progress.advance(task, 2 + EVENTS_PER_USER)
                time.sleep(0.01)  # an app's traffic arrives over time, not in one burst
            client.send_email(to="user_0000@example.com", identifiers={"id": "user_0000"},
                              transactional_message_id="WELCOME")
            client.send_push(identifiers={"id": "user_0000"}, transactional_message_id="HELLO",
                             title="Hi", body="Welcome aboard")
            progress.advance(task, 2)
        call_time = time.perf_counter() - started
        drained = client.flush(timeout=60)
        elapsed = time.perf_counter() - started
        health = client.health()
        stats = sandbox.stats()
        client.close(timeout=5)

    table = Table(title="Delivery report")
    table.add_column("")
    names = list(health.destinations)
    for name in names:
        table.add_column(name, justify="right")
    dest = health.destinations
    rows: dict[str, list[int]] = {
        "delivered": [dest[n].delivered for n in names],
        "retried (messages)": [dest[n].retried for n in names],
        "dead-lettered": [dest[n].failed for n in names],
        "still pending": [dest[n].pending for n in names],
        "requests sent": [dest[n].requests for n in names],
        "health": [],
        "people stored": [stats[n]["people"] for n in names],
        "events stored": [stats[n]["events"] for n in names],
        "devices stored": [stats[n]["devices"] for n in names],
        "sends stored": [stats[n]["sends"] for n in names],
        "duplicates seen": [stats[n]["duplicates"] for n in names],
        "faults injected": [stats[n]["faults_total"] for n in names],
    }
    for label, values in rows.items():
        if label == "health":
            table.add_row(label, *(dest[n].state for n in names))
            continue
        table.add_row(label, *(f"{v:,}" for v in values))
    console.print(table)
    console.print(
        f"{calls + 2} calls made in {call_time * 1000:.0f} ms; all delivered: {drained} "
        f"after {elapsed:.2f} s"
    )
    console.print(
        "OpenCDP takes one request per message; Customer.io takes batches (Track v2), so it "
        "needs fewer requests than messages. 'retried' counts messages sent again after an "
        "injected 5xx (one failed batch retries all its messages); each platform stores every "
        "message once.")
    if show_health:
        console.print("[bold]Health snapshot[/bold]")
        console.print_json(json.dumps(health.to_dict()))
    else:
        console.print("The full health snapshot: python -m opencdp.demo --health")


if __name__ == "__main__":
    main()
