"""Fault injection, as ASGI middleware in front of the emulated services.

Order per request of a service: latency, then a scheduled or manual outage, a connection
reset, a 429 storm, an injected 5xx — all of these *before* the request is processed, so
nothing is stored — and finally the two faults that process the request and then fail to
answer: ``hang`` (never answers) and ``reset_after_store``. Those are the "was it received?"
cases; each is counted under its own name in stats ``faults`` so a test can tell that the
server accepted what the client saw fail.

A connection reset needs the socket, which ASGI does not expose. Both uvicorn protocols pass
their request cycle's bound ``send`` to the app, and that cycle holds the asyncio transport;
the middleware sets ``SO_LINGER`` to 0 (so the kernel sends RST, not FIN) and aborts it. The
middleware must therefore be the outermost layer (no ``send`` wrapper in between). Under
another server the fallback is to drop the connection after a truncated response.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import Any, Final

import orjson

from .config import FaultSettings
from .http import Receive, Reject, Scope, Send, read_body, send_response
from .state import State
from .store import ServiceStore

__all__ = ["FaultMiddleware", "service_of"]

_REASONS: Final = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
                   504: "Gateway Timeout", 521: "Web server is down",
                   523: "Origin is unreachable"}
_MAX_DRAIN: Final = 64


def service_of(path: str) -> str | None:
    """Which emulated service a path belongs to (``None`` for the admin API and unknowns)."""
    if path.startswith("/gateway/"):
        return "opencdp"
    if path.startswith(("/api/", "/v1/", "/unsubscribe/")):
        return "customerio"
    return None


def _error_body(service: str, status: int) -> tuple[bytes, bytes]:
    reason = _REASONS.get(status, "Error")
    if status in (521, 523):
        page = (f"<html><head><title>{status}: {reason}</title></head><body>"
                f"<h1>Error {status}</h1><p>{reason}</p><p>cloudflare</p></body></html>")
        return page.encode(), b"text/html; charset=UTF-8"
    if service == "opencdp":
        return orjson.dumps({"message": reason}), b"application/json"
    return f"{status} {reason}".encode(), b"text/plain; charset=utf-8"


class _Discard:
    """A ``send`` that swallows the response of a request the client must never see answered,
    and takes it back out of the served-responses count."""

    def __init__(self, st: ServiceStore) -> None:
        self.st = st

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            status = message["status"]
            if self.st.responses.get(status):
                self.st.responses[status] -= 1
                if not self.st.responses[status]:
                    del self.st.responses[status]


class FaultMiddleware:
    def __init__(self, app: Any, state: State) -> None:
        self.app = app
        self.state = state
        self._hanging: set[Any] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = service_of(scope["path"])
        if service is None:
            await self.app(scope, receive, send)
            return
        state = self.state
        st = state.store.service(service)
        st.requests += 1
        send = state.requests_log.watch(service, scope, send)
        f = state.faults[service]
        if not f.active:
            await self.app(scope, receive, send)
            return
        await self._faulty(scope, receive, send, service, st, f)

    async def _faulty(self, scope: Scope, receive: Receive, send: Send, service: str,
                      st: ServiceStore, f: FaultSettings) -> None:
        rng = self.state.rngs[service]
        if f.latency_ms or f.jitter_ms:
            st.fault("latency")
            await asyncio.sleep((f.latency_ms + rng.uniform(0, f.jitter_ms)) / 1000)
        if f.is_down(self.state.clock.time()):
            st.fault("down")
            await self._error(receive, send, service, st, f.down_status)
            return
        if f.reset_rate and rng.random() < f.reset_rate:
            st.fault("reset")
            await self._reset(receive, send)
            return
        if f.rate_limit_storm and rng.random() < f.rate_limit_storm:
            st.fault("rate_limit_storm")
            await self._drain(receive)
            retry = str(max(1, round(f.retry_after))).encode()
            body = (orjson.dumps({"message": "Too many requests"}) if service == "opencdp"
                    else orjson.dumps({"meta": {"error": "rate limited"}}))
            st.responses[429] = st.responses.get(429, 0) + 1
            await send_response(send, (429, body, [(b"content-type", b"application/json"),
                                                   (b"retry-after", retry)]))
            return
        if f.error_rate and rng.random() < f.error_rate:
            status = rng.choice(f.statuses)
            st.fault(f"error_{status}")
            await self._error(receive, send, service, st, status)
            return
        if f.hang_rate and rng.random() < f.hang_rate:
            st.fault("hang_after_store")
            await self.app(scope, receive, _Discard(st))
            await self._hang(receive, send)
            return
        if f.reset_after_store_rate and rng.random() < f.reset_after_store_rate:
            st.fault("reset_after_store")
            await self.app(scope, receive, _Discard(st))
            await self._reset(receive, send)
            return
        await self.app(scope, receive, send)

    async def _error(self, receive: Receive, send: Send, service: str, st: ServiceStore,
                     status: int) -> None:
        await self._drain(receive)
        body, ctype = _error_body(service, status)
        st.responses[status] = st.responses.get(status, 0) + 1
        headers = [(b"content-type", ctype)]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        await send_response(send, (status, body, headers))

    async def _drain(self, receive: Receive) -> None:
        """Read the body a fault answers without looking at; a stalled or vanished client
        still gets the fault's answer (written into the void if it is gone)."""
        with contextlib.suppress(Reject):
            await read_body(receive)

    async def _reset(self, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-length", b"100")]})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            raise ConnectionResetError("sandbox: injected connection reset")
        _abort(transport)
        await _until_disconnect(receive)

    async def _hang(self, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is not None:
            self._hanging.add(transport)
        try:
            await _until_disconnect(receive, forever=True)
        finally:
            self._hanging.discard(transport)

    def release(self) -> None:
        """Drop every hanging connection (at shutdown, so the server can stop promptly)."""
        for transport in list(self._hanging):
            _abort(transport)
        self._hanging.clear()


def _abort(transport: Any) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _until_disconnect(receive: Receive, *, forever: bool = False) -> None:
    for _ in range(_MAX_DRAIN if not forever else 1 << 62):
        message = await receive()
        if message["type"] == "http.disconnect":
            return
