"""Loopback servers for the endpoints under test, and clients wired to the sandbox."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import uvicorn

from opencdp import CustomerIO
from opencdp.config import BreakerConfig, RetryConfig


def client_options(sandbox: Any, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "cdp_api_key": "cdp-test-key",
        "cdp_endpoint": sandbox.opencdp_url,
        "cdp_fallback_endpoints": [],
        "send_to_customer_io": True,
        "customer_io": CustomerIO("sandbox-site", "sandbox-track-key",
                                  app_api_key="sandbox-app-key",
                                  track_url=sandbox.track_url, app_url=sandbox.app_url),
        "retry": RetryConfig(base_delay=0.01, max_delay=0.05),
        "breaker": BreakerConfig(reset_timeout=0.2),
        "register_atexit": False,
        "timeout": 5.0,
    }
    options.update(extra)
    return options


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none",
                            access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), what="uvicorn start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingWSGIServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
