"""Fixtures: the webhook endpoint served over loopback HTTP (ASGI and WSGI), and an HTTP client.

One uvicorn and one wsgiref server live for the whole session; each test points them at its own
handler, which keeps server start-up and shut-down out of every test.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest

from opencdp.webhooks import WebhookHandler, asgi_app, wsgi_app
from support.servers import serve_asgi, serve_wsgi

from .support import Serve


class _ASGISwitch:
    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


class _WSGISwitch:
    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def _asgi_server() -> Iterator[tuple[_ASGISwitch, str]]:
    switch = _ASGISwitch()
    with serve_asgi(switch) as url:
        yield switch, url


@pytest.fixture(scope="session")
def _wsgi_server() -> Iterator[tuple[_WSGISwitch, str]]:
    switch = _WSGISwitch()
    with serve_wsgi(switch) as url:
        yield switch, url


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: pytest.FixtureRequest) -> Serve:
    """Serve a handler's ASGI or WSGI endpoint on a loopback port; returns its URL."""
    switch, url = request.getfixturevalue(f"_{request.param}_server")
    make = asgi_app if request.param == "asgi" else wsgi_app

    def start(handler: WebhookHandler) -> str:
        switch.app = make(handler)
        return str(url)

    return start


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        yield client
