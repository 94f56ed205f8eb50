"""The relay as a Starlette app: ``create_app(config)``.

One ``Client`` per app, owned by the lifespan: created at start-up (opening the outbox and
starting the dispatcher) and closed at shutdown with ``drain_timeout``, after the server has
stopped taking requests and finished those in flight. Every route reads it from the app's
``Relay``, so the gateway API, the health pages, the metrics and the webhook built-ins all see
the same queue, breakers and counters.

Routes::

    /gateway/data-gateway/v1/...   the gateway API (opencdp.server.gateway), key required
    /health, /health/<dest>        opencdp.health's endpoint over the relay's client
    /metrics                       Prometheus text: opencdp.metrics' collector and the
                                   relay's own request counter, on a registry of the app's own
    /webhooks/customerio           signed Customer.io webhooks (when a signing key is set)
    /dashboard                     the live dashboard (opencdp.dashboard), behind a relay key
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ..client import Client
from ..dashboard import ClientSource, dashboard_app
from ..errors import OpenCDPError
from ..health import Health, health_asgi_app
from .auth import KeyCheck
from .config import ServerConfig
from .fastpath import FastIngest
from .gateway import GATEWAY_PREFIX, GatewayAPI
from .scale import health_with_relay, start_extras

__all__ = ["Relay", "create_app"]

logger = logging.getLogger("opencdp.server")

_JSON = "application/json"


class Relay:
    """What the routes share: the configuration, the key check and, while the app runs, the
    client. ``drained`` is the result of the final ``close`` (None until shutdown)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.keys = KeyCheck(config.api_keys)
        self.client: Client | None = None
        self.closing = False
        self.drained: bool | None = None
        self.startup_error: BaseException | None = None
        self.metrics_problem: str | None = None
        self.registry: Any = None
        self._requests: Any = None
        self._collector: Any = None
        self._counted: dict[tuple[str, int], Any] = {}
        self.sender: Client | None = None  # sends' client when ingest-only (scale.py)
        self._writer: Any = None  # multiprocess metrics writer (scale.py)

    def __repr__(self) -> str:
        state = "running" if self.client is not None and not self.closing else "stopped"
        return f"<Relay {state} {self.config!r}>"

    def count(self, endpoint: str, status: int) -> None:
        if self._requests is not None:
            child = self._counted.get((endpoint, status))
            if child is None:  # labels() costs as much as the rest of a count: once per pair
                child = self._counted[(endpoint, status)] = self._requests.labels(
                    endpoint, str(status))
            child.inc()

    def health(self) -> Health:
        if self.client is None:
            raise RuntimeError("the relay's client is not running")
        return self.client.health()

    # metrics -----------------------------------------------------------------------------
    def prepare_metrics(self) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter
        except ImportError:
            self.metrics_problem = ("metrics need prometheus-client: "
                                    "pip install 'opencdp[metrics]'")
            return
        try:
            module = importlib.import_module("opencdp.metrics")
            self._collector = module.OpenCDPCollector
        except (ImportError, AttributeError, OpenCDPError):
            self.metrics_problem = "this opencdp install has no metrics collector"
            return
        self.registry = CollectorRegistry()
        shared = module.multiprocess_dir() is not None  # several processes: scale.py
        self._requests = Counter(
            "opencdp_relay_requests", "Gateway API requests answered by the relay.",
            ["endpoint", "status"], registry=None if shared else self.registry,
        )

    def attach_metrics(self, client: Client) -> None:
        if self.registry is not None and self._collector is not None:
            self.registry.register(self._collector(client))

    def start_multiprocess_metrics(self, client: Client) -> Any:
        """This process's writer into the shared metrics files, or None when not shared."""
        from .. import metrics

        if self.registry is None or metrics.multiprocess_dir() is None:
            return None
        self._writer = metrics.MultiprocessWriter(client)
        return self._writer

    def scrape(self) -> bytes:
        from prometheus_client import generate_latest

        if self._writer is not None:  # every process's values, this one's as of now
            from ..metrics import multiprocess_registry

            self._writer.write()
            return bytes(generate_latest(multiprocess_registry()))
        data: bytes = generate_latest(self.registry)
        return data


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps({"message": message}), status, headers, _JSON)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        # The type only: a storage error's text can carry a connection URL.
        logger.error("relay: %s %s failed: %s", request.method, request.url.path,
                     type(exc).__name__, exc_info=exc)
        return _json_error(500, f"internal error ({type(exc).__name__})")
    if exc.status_code == 404:
        return _json_error(404, f"Cannot {request.method} {request.url.path}")
    if exc.status_code == 405:
        return _json_error(405, f"{request.method} is not allowed here", dict(exc.headers or {}))
    return _json_error(exc.status_code, str(exc.detail))


async def _client_gone(request: Request, exc: Exception) -> Response:
    """A client that hung up (or was answered 408) mid-body: nothing to answer, nothing to
    log beyond a debug line, since the client already knows the request failed."""
    logger.debug("relay: %s %s: the client went away before its body arrived",
                 request.method, request.url.path)
    return Response(b"", 400)


def create_app(config: ServerConfig) -> Starlette:
    """The relay app. Serve it with uvicorn (``opencdp serve`` does) with the lifespan on."""
    if not isinstance(config, ServerConfig):
        raise TypeError("create_app needs a ServerConfig")
    relay = Relay(config)
    relay.prepare_metrics()
    handler: Any = None

    async def metrics(request: Request) -> Response:
        if relay.registry is None or relay.client is None:
            return _json_error(503, relay.metrics_problem or "the relay is not running")
        from prometheus_client import CONTENT_TYPE_LATEST

        body = await run_in_threadpool(relay.scrape)
        return Response(body, 200, {"content-type": CONTENT_TYPE_LATEST})

    health = health_with_relay(health_asgi_app(relay.health), relay)
    gateway = GatewayAPI(relay)
    dashboard = dashboard_app(ClientSource(lambda: relay.client, "relay", config.api_keys),
                              config.api_keys)
    routes: list[BaseRoute] = [
        Mount(GATEWAY_PREFIX, routes=gateway.routes()),
        Mount("/dashboard", app=dashboard),
        Route("/health", health, methods=["GET", "HEAD"]),
        Route("/health/{destination}", health, methods=["GET", "HEAD"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if config.webhook_signing_key is not None:
        from ..webhooks import WebhookHandler, asgi_app

        handler = WebhookHandler(config.webhook_signing_key,
                                 max_body_bytes=config.max_body_bytes)
        routes.append(Route("/webhooks/customerio", asgi_app(handler), methods=["POST"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            client = await asyncio.to_thread(Client, config=config.client_config())
        except Exception as exc:
            relay.startup_error = exc
            raise
        relay.client = client
        if handler is not None:
            handler.client = client
        relay.attach_metrics(client)
        stop_extras = await start_extras(relay, client)
        try:
            yield
        finally:
            relay.closing = True
            dashboard.close()
            await stop_extras()
            relay.drained = await asyncio.to_thread(client.close, config.drain_timeout)

    app = Starlette(
        routes=routes,
        middleware=[Middleware(FastIngest, api=gateway)],  # person calls (fastpath.py)
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, ClientDisconnect: _client_gone,
                            Exception: _http_error},
    )
    app.state.relay = relay
    return app
