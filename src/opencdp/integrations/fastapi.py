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

``health_routes()`` are plain routes rather than a mount: a mount at ``/health/opencdp``
answers its own path with a 307 to ``/health/opencdp/`` and serves OpenCDP's health one
level further down.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.requests import HTTPConnection
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

__all__ = ["STATE_KEY", "get_client", "health_app", "health_routes", "lifespan"]

STATE_KEY = "opencdp"
"""Where the lifespan keeps the client: ``app.state.opencdp``."""

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


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
        try:
            if wrap is None:
                yield None
            else:
                async with wrap(app) as state:
                    yield state
        finally:
            await client.close(timeout=client.config.shutdown_timeout)

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
