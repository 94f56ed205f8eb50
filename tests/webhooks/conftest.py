"""Fixtures: the webhook endpoint served over loopback HTTP (ASGI and WSGI), and an HTTP client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest

from opencdp.webhooks import WebhookHandler, asgi_app, wsgi_app

from .support import serve_asgi, serve_wsgi

Serve = Callable[[WebhookHandler], str]


@pytest.fixture(params=["asgi", "wsgi"])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """Start a handler's ASGI or WSGI endpoint on a loopback port; returns its URL."""
    with ExitStack() as stack:

        def start(handler: WebhookHandler) -> str:
            if request.param == "asgi":
                return stack.enter_context(serve_asgi(asgi_app(handler)))
            return stack.enter_context(serve_wsgi(wsgi_app(handler)))

        yield start


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5.0) as client:
        yield client
