"""FastAPI and Starlette: a lifespan that owns an ``AsyncClient``, a dependency that hands it
to endpoints, and a health app that reads it.

.. code-block:: python

    from typing import Annotated

    from fastapi import Depends, FastAPI
    from opencdp import AsyncClient
    from opencdp.integrations.fastapi import get_client, health_app, lifespan

    app = FastAPI(lifespan=lifespan())            # AsyncClient.from_env() per process
    app.mount("/health/opencdp", health_app)

    @app.post("/signup")
    async def signup(user_id: str, cdp: Annotated[AsyncClient, Depends(get_client)]):
        await cdp.track(user_id, "signed_up")

The client is built when the server starts the app (after uvicorn or gunicorn forked its
workers, so one per worker process) and closed when the server stops it, with
``close(timeout=client.config.shutdown_timeout)``. Only Starlette is needed (FastAPI is
not imported); ``get_client`` also works as ``get_client(request)`` in a Starlette route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from ..client import AsyncClient
from ..errors import ConfigurationError
from ..health import health_asgi_app

__all__ = ["STATE_KEY", "get_client", "health_app", "lifespan"]

STATE_KEY = "opencdp"
"""Where the lifespan keeps the client: ``app.state.opencdp``."""

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def lifespan(factory: Callable[[], AsyncClient] | None = None, *,
             wrap: Lifespan | None = None) -> Lifespan:
    """A lifespan for ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)``.

    ``factory`` builds the client (default ``AsyncClient.from_env``); ``wrap`` is the app's
    own lifespan, entered inside ours so it can use ``app.state.opencdp``.
    """
    build = factory or AsyncClient.from_env

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
