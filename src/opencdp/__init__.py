"""opencdp: send customer data to OpenCDP and dual-write it to Customer.io, reliably."""

from .config import CustomerIO
from .errors import (
    ClientClosedError,
    ConfigurationError,
    DeliveryError,
    OpenCDPError,
    QueueFullError,
    SendError,
    TransportError,
    ValidationError,
)

__all__ = [
    "ClientClosedError",
    "ConfigurationError",
    "CustomerIO",
    "DeliveryError",
    "OpenCDPError",
    "QueueFullError",
    "SendError",
    "TransportError",
    "ValidationError",
]
__version__ = "0.1.0"
