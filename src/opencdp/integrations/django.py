"""Django: settings, a lazily built client per process, a health view and a system check.

.. code-block:: python

    # settings.py
    INSTALLED_APPS = [..., "opencdp.integrations.django.OpenCDPConfig"]
    OPENCDP = {"queue": "sqlite:///var/lib/myapp/opencdp.db"}  # plus the environment

    # views.py
    from opencdp.integrations.django import get_client
    get_client().track(str(user.pk), "signed_up", {"plan": "pro"})

    # urls.py
    from opencdp.integrations.django import health_view
    urlpatterns += [path("health", health_view),                        # overall
                    path("health/<str:destination>", health_view)]      # opencdp, customerio

Nothing touches the network, Redis or the queue file at import or in ``ready()``: the
client is built by the first ``get_client()`` in each process, so ``manage.py migrate``
and every other management command work with the configured Redis down, the runserver
reloader parent never builds one, and a forked worker builds its own. It is closed at
interpreter exit (or by the gunicorn hooks) with ``client.close(timeout=shutdown_timeout)``.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.http import HttpRequest, JsonResponse

from ..client import Client
from ..config import ClientConfig
from ..errors import ConfigurationError
from ..health import render
from ._process import ProcessClient
from ._settings import config_from_mapping

__all__ = [
    "OpenCDPConfig",
    "check_settings",
    "client_config",
    "get_client",
    "health_view",
    "override_client",
]


def client_config() -> ClientConfig:
    """The ``ClientConfig`` from ``settings.OPENCDP`` over the environment."""
    return config_from_mapping(getattr(settings, "OPENCDP", None), "settings.OPENCDP")


_client: ProcessClient[Client] = ProcessClient(lambda: Client(config=client_config()),
                                               prebuild=True)


def get_client() -> Client:
    """This process's client, built on first use."""
    return _client.get()


def override_client(client: Client) -> AbstractContextManager[Client]:
    """In tests: ``with capture() as cap, override_client(cap.client):`` makes
    ``get_client()`` return the capture's client until the block ends."""
    return _client.override(client)


def health_view(request: HttpRequest, destination: str | None = None) -> JsonResponse:
    """``GET`` health as JSON: 200, or 503 when OpenCDP's breaker is open (``destination``
    narrows it to ``opencdp`` or ``customerio``, as a URL parameter)."""
    status, body = render(get_client().health(), destination)
    return JsonResponse(body, status=status)


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``manage.py check``: credentials present and options valid, without connecting."""
    configured = getattr(settings, "OPENCDP", None) or {}
    if isinstance(configured, ClientConfig):
        return []
    has_key = isinstance(configured, dict) and bool(configured.get("cdp_api_key"))
    if not has_key and not (os.environ.get("CDP_API_KEY") or "").strip():
        return [checks.Error(
            "no OpenCDP API key: set the CDP_API_KEY environment variable",
            hint="The key comes from the environment, not from settings.py (opencdp audit "
                 "reports a key written there, OCDP201); settings.OPENCDP takes the other "
                 "Client options.",
            id="opencdp.E001",
        )]
    try:
        client_config()
    except ConfigurationError as exc:
        return [checks.Error(f"settings.OPENCDP is invalid: {exc}", id="opencdp.E002")]
    return []


class OpenCDPConfig(AppConfig):  # type: ignore[misc]
    """List ``"opencdp.integrations.django.OpenCDPConfig"`` in ``INSTALLED_APPS``; ``ready()``
    only registers the system check."""

    name = "opencdp.integrations.django"
    label = "opencdp"
    verbose_name = "OpenCDP"

    def ready(self) -> None:
        """Register the settings check, so ``manage.py check`` reports a bad ``OPENCDP``
        setting before the first request does."""
        checks.register(check_settings, "opencdp")
