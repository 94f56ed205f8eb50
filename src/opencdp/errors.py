"""Every exception opencdp raises, under one root.

Foreign errors (httpx, sqlite3, redis) are converted where they happen, so a caller only ever
needs ``except OpenCDPError``::

    OpenCDPError
    ├── ConfigurationError        bad options or environment variables (raised at construction)
    ├── ValidationError           bad input to a call; ``.field`` names the offending field
    ├── OutboxError               the outbox could not store a message (disk, Redis down)
    │   └── QueueFullError        the outbox is full and its policy is ``block`` with a timeout
    ├── ClientClosedError         a call after ``close()``
    ├── AppAPIError               a Customer.io App API read failed for good (``opencdp import
    │   │                         --from-customerio``); ``.status`` and ``.code`` (OCDP36x)
    │   └── AppAPIAuthError       the App API key was refused (401/403)
    └── DeliveryError             a blocking call whose OpenCDP write failed (``fail_on_exception``)
        ├── SendError             a transactional send was refused or failed
        └── TransportError        the request did not complete; ``.maybe_received`` says whether
                                  the gateway could have received it (read timeout) or not
                                  (connect error)

Customer.io failures never raise into the host application: they are logged, counted and
dead-lettered. Error messages never contain API keys.
"""

from __future__ import annotations

__all__ = [
    "AppAPIAuthError",
    "AppAPIError",
    "ClientClosedError",
    "ConfigurationError",
    "DeliveryError",
    "OpenCDPError",
    "OutboxError",
    "QueueFullError",
    "SendError",
    "TransportError",
    "ValidationError",
]


class OpenCDPError(Exception):
    """Root of every error opencdp raises."""


class ConfigurationError(OpenCDPError, ValueError):
    """An option or environment variable is missing or malformed.

    ``option`` names the option (or environment variable) at fault, so tools and tests can
    point at it without parsing the message; ``code`` is set for the mistakes with a
    documented code (OCDP33x).
    """

    def __init__(
        self, message: str, *, option: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.option = option
        self.code = code


class ValidationError(OpenCDPError, ValueError):
    """A call's input was refused before anything was queued or sent."""

    def __init__(self, message: str, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class OutboxError(OpenCDPError):
    """The outbox could not store a message; it was not queued."""


class QueueFullError(OutboxError):
    """The outbox stayed full for the whole ``block`` timeout."""


class ClientClosedError(OpenCDPError):
    """The client was closed; it accepts no more calls."""


class AppAPIError(OpenCDPError):
    """A read from Customer.io's App API failed and retrying cannot help: refused (4xx),
    unreadable, or still failing after the bounded retries. Never carries the key."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AppAPIAuthError(AppAPIError):
    """The App API refused the key (401/403): wrong key, a Track key, or the other region."""


class DeliveryError(OpenCDPError):
    """A blocking call could not be delivered to OpenCDP."""

    def __init__(self, message: str, status: int | None = None, body: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class SendError(DeliveryError):
    """A transactional send failed; it was not retried anywhere it could have been sent twice."""


class TransportError(DeliveryError):
    """The request did not complete.

    ``maybe_received`` is False only when the request provably never reached the server
    (connection refused, DNS failure, connect timeout).
    """

    def __init__(self, message: str, *, maybe_received: bool) -> None:
        super().__init__(message)
        self.maybe_received = maybe_received
