"""Flask: an extension with ``init_app``, one client per process, closed at worker exit.

.. code-block:: python

    from flask import Flask
    from opencdp.integrations.flask import OpenCDP

    cdp = OpenCDP()

    def create_app():
        app = Flask(__name__)
        app.config["OPENCDP"] = {"queue": "sqlite:///var/lib/myapp/opencdp.db"}
        cdp.init_app(app)             # also serves /health, /health/opencdp, /health/customerio
        return app

    # in a view
    cdp.client.track(user_id, "signed_up")

``app.config["OPENCDP"]`` holds ``Client`` options over the environment (as
``ClientConfig.from_env``); ``OPENCDP_HEALTH_URL`` moves the health routes (default
``/health``, and ``/health/<destination>`` below it; ``None``: none).
The client is built on first use in each process (so never in a master that forks, nor
in the reloader's parent) and closed at interpreter exit, or by the gunicorn hooks, with
``close(timeout=client.config.shutdown_timeout)``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from flask import Flask, Response, current_app, jsonify

from ..client import Client
from ..errors import ConfigurationError
from ..health import render
from ._process import ProcessClient
from ._settings import config_from_mapping

__all__ = ["OpenCDP"]


class OpenCDP:
    """The extension; one instance may serve several apps (each gets its own client)."""

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return "OpenCDP()"

    def init_app(self, app: Flask) -> None:
        """Read and check the options now (a bad one fails at start-up), build nothing."""
        config = config_from_mapping(app.config.get("OPENCDP"), 'app.config["OPENCDP"]')
        app.extensions["opencdp"] = ProcessClient(lambda: Client(config=config), prebuild=True)
        url = app.config.get("OPENCDP_HEALTH_URL", "/health")
        if url:
            app.add_url_rule(url, "opencdp_health", self._health)
            app.add_url_rule(f"{url.rstrip('/')}/<destination>", "opencdp_health_destination",
                             self._health)

    def _holder(self, app: Flask) -> ProcessClient[Client]:
        holder: Any = app.extensions.get("opencdp")
        if not isinstance(holder, ProcessClient):
            raise ConfigurationError("call OpenCDP().init_app(app) before using the client")
        return holder

    def client_for(self, app: Flask) -> Client:
        """``app``'s client, made on first use in this process (after a fork, a new one)."""
        return self._holder(app).get()

    def override_client(self, app: Flask, client: Client) -> AbstractContextManager[Client]:
        """In tests: ``with capture() as cap, cdp.override_client(app, cap.client):``."""
        return self._holder(app).override(client)

    @property
    def client(self) -> Client:
        """The current app's client (inside an app or request context)."""
        return self.client_for(current_app)

    def _health(self, destination: str | None = None) -> tuple[Response, int]:
        status, body = render(self.client.health(), destination)
        return jsonify(body), status
