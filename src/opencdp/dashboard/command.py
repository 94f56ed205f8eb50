"""``opencdp dashboard``: the page over an app's own queue, on loopback; and the small server
the worker uses to serve it beside ``/health``.

The local command opens the queue by URL, as ``opencdp queue`` does, so it shows what the
queue knows (depth, ages, delivered and dead counts, dead letters, the migration's verdict);
breakers and retries live in the processes that deliver and show in their own dashboards.
With no keys it answers loopback requests only, like the sandbox's admin API; set
``OPENCDP_RELAY_KEYS`` to require a login, which a listener beyond loopback must.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import click

from ..checks import is_loopback
from ..errors import ConfigurationError, OpenCDPError
from ..serving import bind, uvicorn_choice

__all__ = ["DEFAULT_PORT", "HTTPThread", "dashboard", "keys_from_env", "routes"]

DEFAULT_PORT = 8787
KEYS_ENV = "OPENCDP_RELAY_KEYS"
Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]


def keys_from_env() -> tuple[str, ...] | None:
    raw = os.environ.get(KEYS_ENV, "")
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    return keys or None


def routes(table: dict[str, ASGI]) -> ASGI:
    """The smallest prefix router: ``{"/dashboard": app, "/health": app}``; a mounted app
    sees its prefix in ``root_path``, as under Starlette."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            from ..serving import lifespan

            await lifespan(receive, send)
            return
        path: str = scope.get("path", "/")
        for prefix, inner in table.items():
            if path == prefix or path.startswith(prefix + "/"):
                await inner(dict(scope, root_path=scope.get("root_path", "") + prefix),
                            receive, send)
                return
        if path == "/" and "/dashboard" in table:
            await send({"type": "http.response.start", "status": 307,
                        "headers": [(b"location", b"/dashboard/"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b'{"error": "not found"}'
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return app


class HTTPThread:
    """uvicorn serving ``app`` on ``host:port`` from a daemon thread (port 0: a free one)."""

    def __init__(self, app: ASGI, host: str, port: int, what: str) -> None:
        try:
            import uvicorn
        except ImportError:
            raise ConfigurationError(
                f"{what} needs uvicorn: pip install 'opencdp[server]'") from None
        self.sock = bind(host, port, what)
        self.port: int = self.sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        loop, http = uvicorn_choice()
        config = uvicorn.Config(app, loop=loop, http=http, lifespan="off", access_log=False,
                                log_config=None, log_level="warning", server_header=False,
                                ws="none", timeout_graceful_shutdown=2)

        class _Server(uvicorn.Server):
            def install_signal_handlers(self) -> None:
                pass  # the process's own handlers stay in charge

        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name=f"opencdp-{what}-http", daemon=True)

    def start(self, timeout: float = 10.0) -> HTTPThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise OpenCDPError("the HTTP server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()


@click.command()
@click.option("--queue", "queue_url", required=True, envvar="OPENCDP_QUEUE_URL",
              show_envvar=True, metavar="URL", help="sqlite:///path.db or redis://host:port/db")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback only with OPENCDP_RELAY_KEYS set.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(0, 65535),
              help="Port; 0 picks a free one.")
@click.option("--sandbox", "sandbox_url", default=None, metavar="ADMIN_URL",
              help="A sandbox's admin URL: the migration panel's parity person by person.")
def dashboard(queue_url: str, host: str, port: int, sandbox_url: str | None) -> None:
    """Serve the live dashboard over a local SQLite or Redis queue until Ctrl-C.

    Prints one JSON line with the page's URL. Without OPENCDP_RELAY_KEYS it answers loopback
    requests only and asks for no login.
    """
    from ..outbox.command import open_for_inspection
    from ..outbox.url import safe_url
    from ..redaction import url_secrets
    from .app import dashboard_app
    from .data import QueueSource

    keys = keys_from_env()
    if keys is None and not is_loopback(host.strip("[]")):
        raise click.UsageError(f"--host {host} is beyond loopback: set {KEYS_ENV} so the page "
                               "asks for a key")
    try:
        box = open_for_inspection(queue_url)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    except OpenCDPError as exc:
        raise click.ClickException(str(exc)) from None
    reader: Any = None
    if sandbox_url:
        from ..reconcile.sources import SandboxAdmin

        reader = SandboxAdmin(sandbox_url)
    app = dashboard_app(QueueSource(box, "queue " + safe_url(queue_url),
                                    (*url_secrets(queue_url), *(keys or ()))),
                        keys, sandbox=reader)
    try:
        server = HTTPThread(routes({"/dashboard": app}), host, port, "dashboard").start()
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    print(json.dumps({"dashboard": server.url + "/dashboard/", "queue": safe_url(queue_url)}),
          flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            if not server.thread.is_alive():
                break
    finally:
        app.close()
        server.stop()
        try:
            box.close()
        except OpenCDPError as exc:
            logging.getLogger("opencdp").debug("dashboard: closing the queue: %s", exc)
    sys.exit(0)
