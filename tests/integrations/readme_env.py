"""Imported first by the README examples' runners: the sandbox's endpoints for
``from_env``, through ``OPENCDP_ENDPOINT``, ``CUSTOMERIO_TRACK_URL`` and
``CUSTOMERIO_APP_URL``, bridged for a ``from_env`` that does not read them yet."""

from __future__ import annotations

import os
from typing import Any

from opencdp import CustomerIO
from opencdp.config import ClientConfig

_PROBE = "http://127.0.0.1:9/probe"
_probe = ClientConfig.from_env(environ={
    "CDP_API_KEY": "k", "OPENCDP_ENDPOINT": _PROBE, "CUSTOMERIO_SITE_ID": "s",
    "CUSTOMERIO_TRACK_API_KEY": "t", "CUSTOMERIO_TRACK_URL": _PROBE,
    "CUSTOMERIO_APP_URL": _PROBE})
_cio = _probe.customer_io
if not (_probe.cdp_hosts[0] == _PROBE and _cio is not None
        and _cio.track_url == _cio.app_url == _PROBE):
    _from_env = ClientConfig.from_env.__func__  # type: ignore[attr-defined]

    def from_env(cls: type[ClientConfig], environ: Any = None, **overrides: Any) -> Any:
        env = os.environ if environ is None else environ
        overrides.setdefault("cdp_endpoint", env["OPENCDP_ENDPOINT"])
        overrides.setdefault("cdp_fallback_endpoints", [])
        overrides.setdefault("customer_io", CustomerIO(
            env["CUSTOMERIO_SITE_ID"], env["CUSTOMERIO_TRACK_API_KEY"],
            track_url=env["CUSTOMERIO_TRACK_URL"], app_url=env["CUSTOMERIO_APP_URL"]))
        overrides.setdefault("send_to_customer_io", True)
        return _from_env(cls, environ, **overrides)

    ClientConfig.from_env = classmethod(from_env)  # type: ignore[assignment,method-assign]
