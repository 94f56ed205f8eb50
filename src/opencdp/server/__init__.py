"""The relay service behind ``opencdp serve``.

It accepts the OpenCDP gateway's own API (same paths, bodies and raw-key ``Authorization``) so
that any official OpenCDP SDK, in any language, can point its endpoint at it, and delivers what
arrives with this SDK's engine: dual-write to Customer.io, batching, retries, breakers and a
durable outbox. Transactional sends are forwarded synchronously under the send-safe rule. It
also serves health, Prometheus metrics and the Customer.io webhook endpoint::

    from opencdp.server import ServerConfig, create_app

    app = create_app(ServerConfig.from_env())      # serve with uvicorn, lifespan on

See docs/relay.md.
"""

from __future__ import annotations

from .app import create_app
from .config import ServerConfig
from .runner import RelayServer

__all__ = ["RelayServer", "ServerConfig", "create_app"]
