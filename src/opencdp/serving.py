"""What our ASGI apps and servers share: a bound socket, the fastest uvicorn loop and HTTP
parser that are installed, and the ASGI lifespan answer of an app with nothing to start."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import ConfigurationError

__all__ = ["bind", "lifespan", "uvicorn_choice"]


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
