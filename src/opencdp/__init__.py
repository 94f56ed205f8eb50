"""opencdp: send customer data to OpenCDP and dual-write it to Customer.io, reliably.

The root is lazy (PEP 562): a name is imported on first use, so ``opencdp audit``, the CLI's
help and ``opencdp.guards`` load without the client and its HTTP stack (aiohttp). Before,
any ``import opencdp.*`` imported the client: 49 modules and 0.21 s, against 0.12 s for
Customer.io's own client; ``bench/import_cost.py`` prints today's figures beside it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .client import AsyncClient, Client
    from .config import BreakerConfig, ClientConfig, CustomerIO, RateLimitConfig, RetryConfig
    from .default import (
        NotInitializedError,
        close,
        flush,
        get_client,
        identify,
        init,
        page,
        register_device,
        screen,
        send_email,
        track,
        track_anonymous,
    )
    from .errors import (
        ClientClosedError,
        ConfigurationError,
        DeliveryError,
        OpenCDPError,
        OutboxError,
        QueueFullError,
        SendError,
        TransportError,
        ValidationError,
    )
    from .health import Health
    from .options import ClientOptions, Context, MessageView
    from .outbox.base import DeadLetter

__all__ = [
    "AsyncClient",
    "BreakerConfig",
    "Client",
    "ClientClosedError",
    "ClientConfig",
    "ClientOptions",
    "ConfigurationError",
    "Context",
    "CustomerIO",
    "DeadLetter",
    "DeliveryError",
    "Health",
    "MessageView",
    "NotInitializedError",
    "OpenCDPError",
    "OutboxError",
    "QueueFullError",
    "RateLimitConfig",
    "RetryConfig",
    "SendError",
    "TransportError",
    "ValidationError",
    "__version__",
    "close",
    "flush",
    "get_client",
    "identify",
    "init",
    "page",
    "register_device",
    "screen",
    "send_email",
    "track",
    "track_anonymous",
]

_HOMES = {
    ".client": ("AsyncClient", "Client"),
    ".config": ("BreakerConfig", "ClientConfig", "CustomerIO", "RateLimitConfig", "RetryConfig"),
    ".default": ("NotInitializedError", "close", "flush", "get_client", "identify", "init",
                 "page", "register_device", "screen", "send_email", "track",
                 "track_anonymous"),
    ".errors": ("ClientClosedError", "ConfigurationError", "DeliveryError", "OpenCDPError",
                "OutboxError", "QueueFullError", "SendError", "TransportError",
                "ValidationError"),
    ".health": ("Health",),
    ".options": ("ClientOptions", "Context", "MessageView"),
    ".outbox.base": ("DeadLetter",),
}
_HOME = {name: module for module, names in _HOMES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'opencdp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
