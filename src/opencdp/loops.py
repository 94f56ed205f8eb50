"""The event loop the engine runs on, and what must be imported before its thread starts."""

from __future__ import annotations

import asyncio
import functools
import importlib
import socket
from typing import Any

__all__ = ["new_loop", "preimport"]

PREIMPORT = ("encodings.idna", "encodings.ascii", "email.utils", "http.cookies",
             "aiohttp.client", "aiohttp.connector", "aiohttp.resolver", "ssl",
             "concurrent.futures.thread", "aiohttp.resolver", "asyncio.base_events", "uvloop")


def preimport() -> None:
    """Import what the engine's thread would import lazily, before the thread starts: a
    fork that catches a lazy import half-done leaves the child a broken module (an
    ``encodings.idna`` without ``getregentry``, and every connection failing)."""
    for name in PREIMPORT:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    "opencdp.invalid".encode("idna")


def numeric_address(host: Any, port: Any, family: int, type: int, proto: int
                    ) -> list[tuple[Any, ...]] | None:
    """``getaddrinfo``'s answer for a numeric IPv4 or IPv6 address and port, computed here;
    None for anything that needs a look-up."""
    if not isinstance(host, str) or isinstance(port, bool) or not isinstance(port, int):
        return None
    for candidate in (socket.AF_INET, socket.AF_INET6):
        if family not in (socket.AF_UNSPEC, candidate):
            continue
        try:
            socket.inet_pton(candidate, host)
        except OSError:
            continue
        address = (host, port) if candidate == socket.AF_INET else (host, port, 0, 0)
        return [(candidate, type or socket.SOCK_STREAM, proto or socket.IPPROTO_TCP, "",
                 address)]
    return None


@functools.cache
def _uvloop_class() -> type[asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None

    class Loop(uvloop.Loop):
        """uvloop's ``sock_connect`` looks up even a numeric address (aiohttp connects with
        one it resolved itself) with no socket type, which misses uvloop's own numeric fast
        path and runs glibc's ``getaddrinfo`` on libuv's thread pool. A child forked while a
        thread of that pool was inside ``getaddrinfo`` inherits glibc's lock held: every
        connection of the child then waits for ever. A numeric address is answered here."""

        async def getaddrinfo(self, host: Any, port: Any, *, family: int = 0, type: int = 0,
                              proto: int = 0, flags: int = 0) -> list[tuple[Any, ...]]:
            answer = numeric_address(host, port, family, type, proto)
            if answer is not None:
                return answer
            return await super().getaddrinfo(
                host, port, family=family, type=type, proto=proto, flags=flags)

    return Loop


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when it is installed (``opencdp[speed]``): it roughly halves the engine's
    per-request cost; the standard loop otherwise."""
    loop_class = _uvloop_class()
    return asyncio.new_event_loop() if loop_class is None else loop_class()
