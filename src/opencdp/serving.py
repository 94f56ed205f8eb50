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

__all__ = ["ReadTimeout", "bind", "lifespan", "receive_within", "request_timeout_answer",
           "timed_protocol", "uvicorn_choice"]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


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


async def receive_within(receive: Receive, timeout: float) -> Message:
    """``await receive()``, raising ``TimeoutError`` after ``timeout`` seconds.

    A timer that cancels the task costs far less than ``asyncio.wait_for``'s extra task, and
    the body of most requests has already arrived, so this sits on every request's path.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:  # pragma: no cover - always called from a task
        return await receive()
    expired = False

    def fire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    handle = loop.call_later(timeout, fire)
    try:
        return await receive()
    except asyncio.CancelledError:
        if not expired:
            raise
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()
        raise TimeoutError(f"no request data for {timeout:g} s") from None
    finally:
        handle.cancel()


def request_timeout_answer(body: bytes, content_type: bytes = b"application/json") -> bytes:
    """A complete ``408 Request Timeout`` response that closes the connection."""
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: " + content_type
            + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body)


def timed_protocol(http: str, timeout: float, answer: bytes) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (``"httptools"`` or ``"h11"``) with a header read timeout.

    uvicorn waits for ever for a request whose headers never finish (its keep-alive timer
    only runs between requests), so a client that stalls mid-headers holds a connection
    open for good. This one writes ``answer`` (see ``request_timeout_answer``) and closes the
    connection when ``timeout`` seconds pass between a connection's (or the previous
    response's) first byte and the end of the next request's headers.
    """
    base: Any
    if http == "httptools":
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    else:
        from uvicorn.protocols.http.h11_impl import H11Protocol as base

    class TimedProtocol(base):  # type: ignore[misc]
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:
                self._disarm()
            elif data and (before is None or before.response_complete):
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(timeout, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being served; its body has a timeout of its own
            transport.write(answer)
            transport.close()

    return TimedProtocol


class ReadTimeout:
    """ASGI middleware: a request body that stalls for ``timeout`` seconds is answered 408.

    The app then reads ``http.disconnect`` (Starlette raises ``ClientDisconnect``) and
    whatever it tries to send is dropped, since the client already has its answer.
    """

    def __init__(self, app: Any, timeout: float,
                 body: bytes = b'{"message":"request timeout: the request body did not '
                               b'arrive in time"}') -> None:
        self.app = app
        self.timeout = timeout
        self.body = body

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive,
                       send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = timed_out = body_done = False
        timeout = self.timeout

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def timed_receive() -> Message:
            nonlocal timed_out, body_done
            if timed_out:
                return {"type": "http.disconnect"}
            if body_done:
                return await receive()
            try:
                message = await receive_within(receive, timeout)
            except TimeoutError:
                if not started:
                    await send({"type": "http.response.start", "status": 408, "headers": [
                        (b"content-type", b"application/json"), (b"connection", b"close"),
                        (b"content-length", str(len(self.body)).encode())]})
                    await send({"type": "http.response.body", "body": self.body})
                timed_out = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body"):
                body_done = True
            return message

        await self.app(scope, timed_receive, guarded_send)
