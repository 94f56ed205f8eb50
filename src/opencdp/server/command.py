"""``opencdp serve``: the relay, until SIGTERM/SIGINT.

The first line on stdout is one JSON object whose first key is the base URL (``url``, then
``gateway``, ``health``, ``metrics``, ``webhooks``, ``dashboard``), printed once the client is
running and the socket accepts connections. At shutdown a last line ``{"relay": "stopped",
"drained": ...}`` says whether everything queued was delivered in time (what was not stays in
a durable queue).
Keys and credentials come from the environment only, never from arguments that a process list
would show.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from ..config import CustomerIO
from ..errors import ConfigurationError, OpenCDPError
from .config import DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, DEFAULT_QUEUE, ServerConfig
from .runner import RelayServer

__all__ = ["serve"]


def _config(queue: str, host: str, port: int, cdp_endpoints: tuple[str, ...],
            track_url: str | None, app_url: str | None, max_body_bytes: int,
            drain_timeout: float, debug: bool, tls_cert: str | None,
            tls_key: str | None) -> ServerConfig:
    from ..config import ClientConfig

    client_overrides: dict[str, Any] = {"debug": debug}
    if cdp_endpoints:
        client_overrides["cdp_endpoint"] = cdp_endpoints[0]
        client_overrides["cdp_fallback_endpoints"] = list(cdp_endpoints[1:])
    client = ClientConfig.from_env(**client_overrides)
    if client.customer_io is not None and (track_url or app_url):
        cio = client.customer_io
        client = client.with_options(customer_io=CustomerIO(
            cio.site_id, cio.api_key, region=cio.region, app_api_key=cio.app_api_key,
            track_url=track_url or cio.track_url, app_url=app_url or cio.app_url))
    return ServerConfig.from_env(client=client, queue=queue, host=host, port=port,
                                 max_body_bytes=max_body_bytes, drain_timeout=drain_timeout,
                                 tls_cert_file=tls_cert, tls_key_file=tls_key)


def _check_queue(url: str) -> None:
    """Open and close the queue once, so that a URL the outbox refuses is a usage error
    before the server starts (inside it, uvicorn reports it as a startup traceback)."""
    from ..outbox.url import open_outbox, safe_url

    try:
        box = open_outbox(url, max_queue_size=1, queue_full="drop_oldest",
                          queue_full_timeout=0.0, durability="durable",
                          logger=logging.getLogger("opencdp"))
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(f"cannot open the queue {safe_url(url)}: {exc}") from None
    box.close()


@click.command()
@click.option("--queue", default=DEFAULT_QUEUE, envvar="OPENCDP_QUEUE_URL", show_default=True,
              help="Outbox URL: sqlite:///path or redis://host:port/db.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; loopback unless you say otherwise.")
@click.option("--port", default=DEFAULT_PORT, envvar="OPENCDP_RELAY_PORT", show_default=True,
              type=click.IntRange(0, 65535), help="Port; 0 picks a free one.")
@click.option("--cdp-endpoint", "cdp_endpoints", multiple=True, metavar="URL",
              help="Upstream gateway base URL; repeat for fallbacks (default: OpenCDP's hosts).")
@click.option("--track-url", default=None, help="Customer.io Track API base URL override.")
@click.option("--app-url", default=None, help="Customer.io App API base URL override.")
@click.option("--max-body-bytes", default=DEFAULT_MAX_BODY_BYTES, show_default=True,
              envvar="OPENCDP_RELAY_MAX_BODY_BYTES", type=click.IntRange(1),
              help="Largest request body accepted (413 above).")
@click.option("--drain-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to finish requests and deliver the queue on SIGTERM/SIGINT.")
@click.option("--tls-cert", default=None, metavar="PEM",
              help="Serve https with this certificate chain (and key, unless --tls-key).")
@click.option("--tls-key", default=None, metavar="PEM", help="Private key for --tls-cert.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="Server log level (stderr).")
@click.option("--debug", is_flag=True, help="Log every delivery.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              envvar="OPENCDP_RELAY_WORKERS",
              help="Relay processes on the one port (SO_REUSEPORT); they share the queue.")
@click.option("--ingest-only", is_flag=True,
              help="Store and answer only; `opencdp worker` processes deliver the queue.")
def serve(queue: str, host: str, port: int, cdp_endpoints: tuple[str, ...],
          track_url: str | None, app_url: str | None, max_body_bytes: int,
          drain_timeout: float, tls_cert: str | None, tls_key: str | None, log_level: str,
          debug: bool, workers: int, ingest_only: bool) -> None:
    """Serve the OpenCDP gateway API and deliver what arrives with dual-write and a durable
    queue. Accepted keys: OPENCDP_RELAY_KEYS (comma-separated); upstream credentials:
    CDP_API_KEY and CUSTOMERIO_*; webhooks: CUSTOMERIO_WEBHOOK_SIGNING_KEY."""
    try:
        config = _config(queue, host, port, cdp_endpoints, track_url, app_url, max_body_bytes,
                         drain_timeout, debug, tls_cert, tls_key)
        if ingest_only:
            config = config.with_options(ingest_only=True)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    _check_queue(queue)
    if workers > 1:
        _serve_processes(config, workers, log_level)
        return
    holder: list[RelayServer] = []

    def announce() -> None:
        sys.stdout.write(json.dumps(holder[0].urls) + "\n")
        sys.stdout.flush()

    try:
        server = RelayServer(config, on_started=announce, log_level=log_level,
                             quiet_logging=False)
    except ConfigurationError as exc:  # the port is taken, a certificate cannot be loaded
        raise click.ClickException(str(exc)) from None
    holder.append(server)
    try:
        server.run()
    except OpenCDPError as exc:
        # A queue URL or option the client refuses is found only as the app starts.
        if isinstance(exc, ConfigurationError) or isinstance(exc.__cause__, ConfigurationError):
            raise click.UsageError(str(exc)) from None
        raise click.ClickException(str(exc)) from None
    sys.stdout.write(json.dumps({"relay": "stopped", "drained": bool(server.drained)}) + "\n")
    sys.stdout.flush()


def _serve_processes(config: ServerConfig, workers: int, log_level: str) -> None:
    """``--workers N``: the supervisor of server/scale.py prints the same two lines."""
    from .scale import Supervisor

    def announce(urls: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps({**urls, "workers": workers}) + "\n")
        sys.stdout.flush()

    try:
        supervisor = Supervisor(config, workers, log_level=log_level, on_started=announce)
        drained = supervisor.run()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    sys.stdout.write(json.dumps({"relay": "stopped", "drained": drained}) + "\n")
    sys.stdout.flush()
