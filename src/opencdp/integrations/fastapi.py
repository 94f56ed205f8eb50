"""FastAPI and Starlette: a lifespan that owns an ``AsyncClient``, a dependency that hands it
to endpoints, and a health app that reads it.

.. code-block:: python

    from typing import Annotated

    from fastapi import Depends, FastAPI
    from opencdp import AsyncClient
    from opencdp.integrations.fastapi import get_client, health_routes, lifespan

    app = FastAPI(lifespan=lifespan(queue="sqlite:///opencdp-outbox.db"))
    app.routes.extend(health_routes())            # /health, /health/opencdp, /health/customerio

    @app.post("/signup")
    async def signup(user_id: str, cdp: Annotated[AsyncClient, Depends(get_client)]):
        await cdp.track(user_id, "signed_up")

The client is built when the server starts the app (after uvicorn or gunicorn forked its
workers, so one per worker process) and closed when the server stops it, with
``close(timeout=client.config.shutdown_timeout)``. Only Starlette is needed (FastAPI is
not imported); ``get_client`` also works as ``get_client(request)`` in a Starlette route.

``metrics_routes()`` serve the same client's Prometheus metrics at ``/metrics`` (needs the
``metrics`` extra). With ``PROMETHEUS_MULTIPROC_DIR`` set (several workers), the lifespan of
an app holding these routes also copies its worker's metrics into that directory every
``interval`` seconds, at every scrape and at shutdown (then marks the worker dead), and the
route serves prometheus_client's aggregation of every worker: see ``opencdp.metrics``. An app
without the routes runs exactly as before.

``health_routes()`` are plain routes rather than a mount: a mount at ``/health/opencdp``
answers its own path with a 307 to ``/health/opencdp/`` and serves OpenCDP's health one
level further down.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from ..client import AsyncClient
from ..errors import ConfigurationError
from ..health import health_asgi_app
from ..options import ClientOptions
from ._settings import config_from_mapping

if sys.version_info >= (3, 11):
    from typing import Unpack
else:
    from typing_extensions import Unpack

__all__ = ["STATE_KEY", "get_client", "health_app", "health_routes", "lifespan",
           "metrics_routes"]

STATE_KEY = "opencdp"
"""Where the lifespan keeps the client: ``app.state.opencdp``."""

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]

_WRITER_KEY = "opencdp_metrics_writer"
logger = logging.getLogger("opencdp.integrations")


def lifespan(factory: Callable[[], AsyncClient] | None = None, *,
             wrap: Lifespan | None = None, **options: Unpack[ClientOptions]) -> Lifespan:
    """A lifespan for ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)``.

    ``options`` are ``Client`` options over the environment, as Django's and Flask's settings
    (with the same defaults: ``_settings.PROCESS_SILENCE``); or ``factory`` builds the client
    exactly as it says. ``wrap`` is the app's own lifespan, entered inside ours so it can use
    ``app.state.opencdp``.
    """
    if factory is not None and options:
        raise ConfigurationError("lifespan() takes a factory or options, not both")

    def build() -> AsyncClient:
        if factory is not None:
            return factory()
        return AsyncClient(config_from_mapping(options, "lifespan()"))

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[Any]:
        client = build()
        setattr(app.state, STATE_KEY, client)
        publishing = _start_metrics(app, client)
        try:
            if wrap is None:
                yield None
            else:
                async with wrap(app) as state:
                    yield state
        finally:
            try:
                await client.close(timeout=client.config.shutdown_timeout)
            finally:
                if publishing is not None:
                    await _stop_metrics(app, *publishing)

    return run


def _client_of(app: Any) -> AsyncClient:
    client = getattr(getattr(app, "state", None), STATE_KEY, None)
    if not isinstance(client, AsyncClient):
        raise ConfigurationError(
            "no opencdp client on this app: pass lifespan=opencdp.integrations.fastapi."
            "lifespan() to FastAPI(...) or Starlette(...)")
    return client


def get_client(request: HTTPConnection) -> AsyncClient:
    """The app's client: ``cdp: Annotated[AsyncClient, Depends(get_client)]``."""
    return _client_of(request.app)


async def health_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Health endpoints (``/``, ``/opencdp``, ``/customerio``) for ``app.mount(...)``,
    reading the client of the app it is mounted in."""
    client = _client_of(scope.get("app"))
    await health_asgi_app(client)(scope, receive, send)


class _HealthRoute:
    """``health_app`` behind a ``Route``: the page is the ``destination`` path parameter, so
    the routes work under any prefix."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        destination = scope.get("path_params", {}).get("destination", "")
        await health_app({**scope, "path": f"/{destination}", "root_path": ""}, receive, send)


def health_routes(path: str = "/health") -> list[BaseRoute]:
    """``path`` (overall) and ``path/<destination>`` (``opencdp``, ``customerio``), answered
    directly (200 or 503, never a redirect): ``app.routes.extend(health_routes())``."""
    endpoint = _HealthRoute()
    base = "/" + path.strip("/")
    return [Route(base, endpoint, include_in_schema=False),
            Route(f"{base}/{{destination}}", endpoint, include_in_schema=False)]


class _MetricsRoute:
    """The app's client in Prometheus's text format; in multiprocess mode, every worker's."""

    def __init__(self, registry: Any, interval: float) -> None:
        self.registry = registry
        self.interval = interval

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from prometheus_client import CollectorRegistry
        from prometheus_client.exposition import choose_encoder

        from .. import metrics

        app: Any = scope.get("app")
        client = _client_of(app)
        if metrics.multiprocess_dir() is not None:
            writer = getattr(app.state, _WRITER_KEY, None)
            if writer is not None:
                writer.write()  # this worker's values as of now; the others', one period old
            registry = metrics.multiprocess_registry()
        else:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_Chain(self.registry, metrics.OpenCDPCollector(client)))
        accept = dict(scope.get("headers") or []).get(b"accept", b"").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        await Response(encoder(registry), media_type=content_type)(scope, receive, send)


class _Chain:
    def __init__(self, *collectors: Any) -> None:
        self._collectors = [c for c in collectors if c is not None]

    def collect(self) -> Any:
        for collector in self._collectors:
            yield from collector.collect()


def metrics_routes(path: str = "/metrics", *, registry: Any = None,
                   interval: float = 1.0) -> list[BaseRoute]:
    """``GET path``: the lifespan's client in Prometheus's text format (OpenMetrics when
    asked): ``app.routes.extend(metrics_routes())``. ``registry`` (e.g.
    ``prometheus_client.REGISTRY``) is served along with it.

    With ``PROMETHEUS_MULTIPROC_DIR`` set, the route serves the aggregation of every process's
    files in that directory instead (``registry`` is not read: each process's metric objects
    write there), and each worker's lifespan writes its client's values there every
    ``interval`` seconds. Add the routes before the server starts the app.
    """
    from .. import metrics  # noqa: F401  (the extra is needed: say so now, not at a scrape)

    if interval <= 0:
        raise ConfigurationError(f"metrics_routes(interval=...) must be positive, not {interval}")
    return [Route("/" + path.strip("/"), _MetricsRoute(registry, interval),
                  include_in_schema=False)]


def _metrics_routes_of(routes: Any) -> list[_MetricsRoute]:
    found: list[_MetricsRoute] = []
    for route in routes or ():
        endpoint = getattr(route, "endpoint", None)
        if isinstance(endpoint, _MetricsRoute):
            found.append(endpoint)
        found.extend(_metrics_routes_of(getattr(route, "routes", None)))
    return found


def _start_metrics(app: Any, client: AsyncClient) -> tuple[Any, asyncio.Task[None]] | None:
    """In multiprocess mode, for an app with ``metrics_routes()``: this worker's writer and
    its periodic task. Nothing otherwise."""
    routes = _metrics_routes_of(getattr(app, "routes", None))
    if not routes:
        return None
    from .. import metrics

    if metrics.multiprocess_dir() is None:
        return None
    writer = metrics.MultiprocessWriter(client)
    setattr(app.state, _WRITER_KEY, writer)
    interval = min(route.interval for route in routes)

    async def periodically() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                writer.write()
            except Exception as exc:  # the next period tries again
                logger.error("opencdp metrics: writing the multiprocess files failed: %s",
                             type(exc).__name__)

    return writer, asyncio.get_running_loop().create_task(periodically())


async def _stop_metrics(app: Any, writer: Any, task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    setattr(app.state, _WRITER_KEY, None)
    try:
        writer.close()
    except Exception as exc:
        logger.error("opencdp metrics: the last write of the multiprocess files failed: %s",
                     type(exc).__name__)
