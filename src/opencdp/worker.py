"""``opencdp worker``: deliver from a shared outbox, with no application in front of it.

Apps enqueue into a Redis (or SQLite) outbox with ``Client(queue=...)`` and
``start_worker=False``; a pool of these workers, on any hosts, leases from it and delivers with
the same engine (breakers, rate limits, retries, dead letters). Credentials come from the
environment (``CDP_API_KEY``, ``CUSTOMERIO_*``); endpoints from the options below or the
environment. stdout carries one JSON line at start and one at stop, for supervisors; a drain
progress bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import click

from .cli import progress
from .client import Client
from .config import ClientConfig
from .errors import ConfigurationError, OpenCDPError

__all__ = ["run_worker", "worker"]


def _outstanding(client: Client) -> int:
    return sum(d.pending + d.in_flight for d in client.health().destinations.values())


def _drain(client: Client, timeout: float) -> bool:
    """``client.close(timeout)``, watched from here with a progress bar when on a terminal."""
    if not sys.stderr.isatty():
        return client.close(timeout=timeout)
    try:
        total = _outstanding(client)
    except OpenCDPError:
        total = 0
    if not total:
        return client.close(timeout=timeout)
    result: list[bool] = []
    closer = threading.Thread(target=lambda: result.append(client.close(timeout=timeout)),
                              name="opencdp-worker-drain", daemon=True)
    closer.start()
    with progress(f"draining {total} message(s)", total=total) as update:
        while closer.is_alive():
            try:
                left = _outstanding(client)
            except Exception:  # the queue closed under the reader: the drain is ending
                break
            total = max(total, left)
            if update is not None:
                update(total - left, total)
            closer.join(0.1)
    closer.join()
    return bool(result and result[0])


def _deliver_until(client: Client, stop: threading.Event, drain_timeout: float) -> bool:
    try:
        while not stop.wait(1.0):
            pass
    finally:
        drained = _drain(client, drain_timeout)
    return drained


def run_worker(config: ClientConfig, stop: threading.Event, drain_timeout: float = 10.0) -> bool:
    """Deliver until ``stop`` is set, then drain for up to ``drain_timeout`` seconds."""
    client = Client(config=config.with_options(start_worker=True, register_atexit=False))
    return _deliver_until(client, stop, drain_timeout)


def _config(queue: str, cdp_endpoint: str | None, track_url: str | None, app_url: str | None,
            timeout: float, debug: bool) -> ClientConfig:
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
    return config


@click.command()
@click.option("--queue", "queue", required=True, envvar="OPENCDP_QUEUE_URL", show_envvar=True,
              metavar="URL", help="The shared outbox: redis://host:port/db or sqlite:///path.")
@click.option("--cdp-endpoint", default=None, metavar="URL", help="OpenCDP gateway base URL.")
@click.option("--track-url", default=None, metavar="URL",
              help="Customer.io Track API base URL override.")
@click.option("--app-url", default=None, metavar="URL",
              help="Customer.io App API base URL override.")
@click.option("--timeout", "timeout", default=10.0, show_default=True,
              type=click.FloatRange(min=0.1),
              help="HTTP timeout in seconds (a lease lasts three times this).")
@click.option("--drain-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to drain on SIGTERM/SIGINT.")
@click.option("--debug", is_flag=True, help="Log every delivery.")
@click.option("--http-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve /health and the /dashboard (login: a key of OPENCDP_RELAY_KEYS) on "
                   "--http-host:PORT.")
@click.option("--http-host", default="127.0.0.1", show_default=True,
              help="Address for --http-port.")
def worker(queue: str, cdp_endpoint: str | None, track_url: str | None, app_url: str | None,
           timeout: float, drain_timeout: float, debug: bool, http_port: int | None,
           http_host: str) -> None:
    """Deliver messages from a shared outbox until SIGTERM/SIGINT.

    Credentials come from the environment: CDP_API_KEY, and CUSTOMERIO_SITE_ID with
    CUSTOMERIO_TRACK_API_KEY for dual-write.
    """
    if not queue.strip():
        raise click.UsageError("--queue (or OPENCDP_QUEUE_URL) is empty; give a shared outbox "
                               "URL: redis://host:port/db or sqlite:///path")
    if queue.strip().split("?")[0].lower() == "memory":
        raise click.UsageError(
            "the memory queue lives inside one process, so a worker cannot share it with the "
            "apps that enqueue; use redis://host:port/db or sqlite:///path")
    try:
        config = _config(queue, cdp_endpoint, track_url, app_url, timeout, debug)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        client = Client(config=config.with_options(start_worker=True, register_atexit=False))
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    http = _serve_http(client, http_host, http_port) if http_port is not None else None
    print(json.dumps({"worker": "started", "queue": _safe(queue),
                      "destinations": ["opencdp"] + (["customerio"] if config.dual_write else []),
                      **({"dashboard": http.url + "/dashboard/"} if http else {})}),
          flush=True)
    drained = _deliver_until(client, stop, drain_timeout)
    if http is not None:
        http.stop()
    print(json.dumps({"worker": "stopped", "drained": drained}), flush=True)
    sys.exit(0)


def _serve_http(client: Client, host: str, port: int) -> Any:
    """/health and /dashboard on a thread; the dashboard needs OPENCDP_RELAY_KEYS."""
    from .dashboard import ClientSource, dashboard_app
    from .dashboard.command import HTTPThread, keys_from_env, routes
    from .health import health_asgi_app

    keys = keys_from_env()
    if keys is None:
        client.close(0)
        raise click.UsageError("--http-port serves the dashboard behind a key: set "
                               "OPENCDP_RELAY_KEYS=key1,key2")
    board = dashboard_app(ClientSource(lambda: client, "worker", keys), keys)
    try:
        return HTTPThread(routes({"/dashboard": board, "/health": health_asgi_app(client)}),
                          host, port, "worker").start()
    except (ConfigurationError, OpenCDPError) as exc:
        client.close(0)
        raise click.ClickException(str(exc)) from None


def _safe(url: str) -> str:
    from .outbox.url import safe_url

    return safe_url(url)
