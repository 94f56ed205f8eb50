"""opencdp: send customer data to OpenCDP and dual-write it to Customer.io, reliably."""

from ._version import __version__
from .client import AsyncClient, Client
from .config import ClientConfig, CustomerIO
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

__all__ = [
    "AsyncClient",
    "Client",
    "ClientClosedError",
    "ClientConfig",
    "ConfigurationError",
    "CustomerIO",
    "DeliveryError",
    "OpenCDPError",
    "OutboxError",
    "QueueFullError",
    "SendError",
    "TransportError",
    "ValidationError",
    "__version__",
]
