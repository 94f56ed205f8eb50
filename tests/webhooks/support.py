"""Helpers for webhook tests: payloads, signed headers, recorders and loopback servers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
import uvicorn

from opencdp.webhooks import sign_payload

KEY = "whsec_test_key_0123456789"


def payload(
    metric: str = "bounced",
    object_type: str = "email",
    *,
    event_id: str = "01E4C4CT6YDC7Y5M7FE1GWWPQJ",
    person: str | None = "42",
    timestamp: int = 1613063089,
    **data: Any,
) -> bytes:
    body = {
        "event_id": event_id,
        "object_type": object_type,
        "metric": metric,
        "timestamp": timestamp,
        "data": {
            "delivery_id": "RPILAgUBcRhIBqSfeiIwdIYJKxTY",
            "customer_id": person or "",
            "identifiers": {"id": person, "email": "ada@example.com", "cio_id": "d9c106000001"},
            "recipient": "ada@example.com",
            **data,
        },
    }
    return orjson.dumps(body)


def signed(body: bytes, *, ts: int | None = None, key: str = KEY) -> dict[str, str]:
    stamp = int(time.time()) if ts is None else ts
    return {
        "content-type": "application/json",
        "x-cio-timestamp": str(stamp),
        "x-cio-signature": sign_payload(key, stamp, body),
    }


class RecordingClient:
    """Duck-typed stand-in for ``opencdp.Client``: records suppress/identify calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self._changed = threading.Condition()

    def suppress(self, person_id: str) -> None:
        self._record(("suppress", person_id))

    def identify(self, person_id: str, attributes: dict[str, Any]) -> None:
        self._record(("identify", person_id, attributes))

    def _record(self, call: tuple[Any, ...]) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[tuple[Any, ...]]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"expected {count} calls, got {self.calls}")
            return list(self.calls)


class Recorder:
    """A user handler that remembers the events it saw and lets a test wait for them."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self._changed = threading.Condition()

    def __call__(self, event: Any) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Any]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.events) >= count, timeout):
                raise AssertionError(f"expected {count} events, got {len(self.events)}")
            return list(self.events)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=10)
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
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


Serve = Callable[[Any], str]
"""Points a loopback server at a handler's endpoint and returns the server's URL."""
