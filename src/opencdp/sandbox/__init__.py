"""A local emulator of the OpenCDP gateway and Customer.io, with fault injection.

``opencdp sandbox`` (or :class:`Sandbox`) serves, on one loopback port, the gateway under
``/gateway/data-gateway``, Customer.io's Track API v1/v2 under ``/api``, its App API sends
under ``/v1/send``, and an admin API under ``/_sandbox`` to inspect what arrived, inject
faults and reset. See docs/sandbox.md.
"""

from __future__ import annotations

from .app import create_app
from .config import FaultSettings, SandboxConfig
from .runner import Sandbox

__all__ = ["FaultSettings", "Sandbox", "SandboxConfig", "create_app"]
