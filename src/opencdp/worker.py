"""``opencdp worker``: deliver from a shared outbox, with no application in front of it.

Apps enqueue into a Redis (or SQLite) outbox with ``Client(queue=...)`` and
``start_worker=False``; a pool of these workers, on any hosts, leases from it and delivers with
the same engine (breakers, rate limits, retries, dead letters). Credentials come from the
environment (``CDP_API_KEY``, ``CUSTOMERIO_*``); endpoints from the options below.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from .client import Client
from .config import ClientConfig

__all__ = ["run_worker", "worker"]


def run_worker(config: ClientConfig, stop: threading.Event, drain_timeout: float = 10.0) -> bool:
    """Deliver until ``stop`` is set, then drain for up to ``drain_timeout`` seconds."""
    client = Client(config=config.with_options(start_worker=True, register_atexit=False))
    try:
        while not stop.wait(1.0):
            pass
    finally:
        drained = client.close(timeout=drain_timeout)
    return drained


@click.command()
@click.option("--queue", "queue", required=True, envvar="OPENCDP_QUEUE_URL",
              help="Outbox URL: redis://host:port/db or sqlite:///path.")
@click.option("--cdp-endpoint", default=None, help="OpenCDP gateway base URL.")
@click.option("--track-url", default=None, help="Customer.io Track API base URL override.")
@click.option("--app-url", default=None, help="Customer.io App API base URL override.")
@click.option("--timeout", "timeout", default=10.0, show_default=True,
              help="HTTP timeout in seconds (a lease lasts three times this).")
@click.option("--drain-timeout", default=10.0, show_default=True,
              help="Seconds to drain on SIGTERM/SIGINT.")
@click.option("--debug", is_flag=True, help="Log every delivery.")
def worker(queue: str, cdp_endpoint: str | None, track_url: str | None, app_url: str | None,
           timeout: float, drain_timeout: float, debug: bool) -> None:
    """Deliver messages from a shared outbox until SIGTERM/SIGINT."""
    overrides: dict[str, Any] = {"queue": queue, "debug": debug, "timeout": timeout}
    if cdp_endpoint:
        overrides["cdp_endpoint"] = cdp_endpoint
        overrides["cdp_fallback_endpoints"] = []
    config = ClientConfig.from_env(**overrides)
    if config.customer_io is not None and (track_url or app_url):
        from .config import CustomerIO

        cio = config.customer_io
        config = config.with_options(customer_io=CustomerIO(
            cio.site_id, cio.api_key, region=cio.region, app_api_key=cio.app_api_key,
            track_url=track_url or cio.track_url, app_url=app_url or cio.app_url))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(json.dumps({"worker": "started", "queue": _safe(queue),
                      "destinations": ["opencdp"] + (["customerio"] if config.dual_write else [])}),
          flush=True)
    drained = run_worker(config, stop, drain_timeout)
    print(json.dumps({"worker": "stopped", "drained": drained}), flush=True)
    sys.exit(0)


def _safe(url: str) -> str:
    from .outbox.url import safe_url

    return safe_url(url)
