"""opencdp: send customer data to OpenCDP and dual-write it to Customer.io, reliably."""

from ._version import __version__
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
