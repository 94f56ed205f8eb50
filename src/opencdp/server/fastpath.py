"""The relay's person calls answered before Starlette's routing: the ingest hot path.

Profiled under load (docs/relay.md), Starlette's layers around an endpoint (exception
middleware, router, mount, route, ``Request``, ``Response``) cost the relay about as much CPU
per ``track`` as its own checks and the write to the queue. A ``POST`` to one of the three
person-call paths is therefore answered here, as raw ASGI, by ``GatewayAPI.ingest``: the same
key check, body limits, JSON and value checks, the same statuses and bodies, counted in the
same metric. Every other request (sends, health, metrics, the dashboard, wrong methods and
unknown paths) goes on to the app unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from .gateway import GATEWAY_PREFIX, ClientGone, GatewayAPI

__all__ = ["FastIngest"]

logger = logging.getLogger("opencdp.server")

PATHS: Final = {
    f"{GATEWAY_PREFIX}/v1/persons/track": "track",
    f"{GATEWAY_PREFIX}/v1/persons/identify": "identify",
    f"{GATEWAY_PREFIX}/v1/persons/registerDevice": "registerDevice",
}
_JSON: Final = (b"content-type", b"application/json")


class FastIngest:
    """Starlette middleware (``Middleware(FastIngest, api=...)``)."""

    def __init__(self, app: ASGIApp, api: GatewayAPI) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        endpoint = PATHS.get(path)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        try:
            status, body, headers = await self.api.ingest(endpoint, scope["headers"], receive)
        except ClientGone:
            logger.debug("relay: POST %s: the client went away before its body arrived", path)
            return
        except Exception as exc:
            # As app.py's handler: the type only, a storage error's text can carry a URL.
            logger.error("relay: POST %s failed: %s", path, type(exc).__name__, exc_info=exc)
            status, body, headers = (
                500, b'{"message":"internal error (' + type(exc).__name__.encode() + b')"}', {})
        self.api.relay.count(endpoint, status)
        await send({"type": "http.response.start", "status": status,
                    "headers": _headers(body, headers)})
        await send({"type": "http.response.body", "body": body})


def _headers(body: bytes, extra: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    raw = [_JSON, (b"content-length", str(len(body)).encode())]
    raw.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return raw
