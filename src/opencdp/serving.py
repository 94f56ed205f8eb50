"""What our ASGI apps and servers share: a bound socket, the fastest uvicorn loop and HTTP
parser that are installed, the ASGI lifespan answer of an app with nothing to start, and the
read timeouts that answer a stalled client 408 instead of waiting for it for ever."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["bind", "lifespan", "request_timeout_answer", "timed_protocol", "uvicorn_choice"]


def bind(host: str, port: int, what: str) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"{what}: cannot listen on {host}:{port}: {exc.strerror}"
        ) from None
    return sock


def uvicorn_choice() -> tuple[str, str]:
    """(loop, http) for ``uvicorn.Config``: uvloop and httptools when available."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


async def lifespan(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """Acknowledge an ASGI lifespan's startup and shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def request_timeout_answer(body: bytes, content_type: bytes = b"application/json") -> bytes:
    """A complete ``408 Request Timeout`` response that closes the connection."""
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: " + content_type
            + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body)


Answer = Callable[[str | None], bytes]


def timed_protocol(http: str, timeout: float, answer: Answer) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (``"httptools"`` or ``"h11"``) with read timeouts.

    uvicorn waits for ever for a request whose headers never finish (its keep-alive timer
    only runs between requests) or whose body stops short of its ``Content-Length``, so a
    stalled client holds a connection, and a server task, for good. This protocol answers
    ``answer(path)`` (a whole response, see ``request_timeout_answer``; ``path`` is None while
    the headers are incomplete) and closes the connection when ``timeout`` seconds pass
    from a request's first byte without its headers completing, or between two parts of
    its body. The app's pending ``receive()`` then returns ``http.disconnect`` and whatever
    it sends is dropped.

    It costs nothing on the common path: a request that arrives in one read never starts a
    timer (an ASGI-level ``receive`` timeout would cost a timer per request).
    """
    base: Any
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class TimedProtocol(base):  # type: ignore[misc]
        _timer: asyncio.TimerHandle | None = None
        _in_body = False

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm(False)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:
                if cycle.more_body:
                    self._arm(True)
                elif self._timer is not None:
                    self._disarm()
            elif data:
                self._arm(False)  # part of the next request's headers
            elif self._timer is not None:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self, body: bool) -> None:
            """Headers: one deadline from the first byte. Body: a fresh one per read."""
            if self._timer is not None:
                if not body and not self._in_body:
                    return
                self._timer.cancel()
            self._in_body = body
            self._timer = self.loop.call_later(timeout, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            cycle = self.cycle
            path: str | None = None
            if cycle is not None and not cycle.response_complete:
                if not cycle.more_body:
                    return  # the whole request arrived; the app is answering it
                cycle.disconnected = True
                cycle.message_event.set()
                if cycle.response_started:
                    transport.close()
                    return
                path = cycle.scope.get("path")
            transport.write(answer(path))
            transport.close()

    return TimedProtocol
