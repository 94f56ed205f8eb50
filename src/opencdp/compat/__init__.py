"""A drop-in for Codematic's ``cdp-python-sdk`` 0.2.0, backed by opencdp's engine.

Change ``from cdp_client import ...`` to ``from opencdp.compat import ...``: the constructor,
the async methods (``ping``, ``identify``, ``track``, ``register_device``, ``send_email``,
``send_push``, ``send_sms``, ``send_whatsapp``, ``close``), their arguments and return values,
the models and the two exceptions are the same. ``CDPConfig`` maps onto
``opencdp.ClientConfig``: ``timeout_ms`` -> ``timeout``, ``debug``, ``fail_on_exception``,
``cdp_endpoint``, ``cdp_fallback_endpoints``, and ``send_to_customer_io`` with
``customer_io`` -> a ``CustomerIO`` dual-write that actually runs (the original passes the
region as a string, which the ``customerio`` package refuses, so it never dual-writes).

Deliberate differences:

- Without ``fail_on_exception``, ``identify``, ``track`` and ``register_device`` return once
  the message is queued; the engine delivers it with batching, retries, breakers and the
  chosen outbox. With it, they wait for the gateway (up to ``timeout_ms``) so its refusal can
  be raised as ``CDPError`` with ``status_code``; a retryable failure (5xx, timeout) raises
  ``CDPError`` with ``status_code=None`` after ``timeout_ms`` and the message stays queued.
- opencdp checks more before sending (sends' addresses and identifiers, lengths): what it
  refuses is a ``CDPValidationError`` (``status_code`` None) where the original got a 400 from
  the gateway as ``CDPError``. Pitfalls the original sent (ids in event names, millisecond
  ``*_at`` attributes) warn once and are sent as they are, unless ``strict=True``.
- Beside a loopback or sandbox gateway, Customer.io's hosts come from ``CustomerIoConfig`` or
  ``CUSTOMERIO_TRACK_URL``/``CUSTOMERIO_APP_URL``; without them the config is refused, never
  pointed at production.
- Customer.io keys a device by its push token (``fcm_token``), not by ``device_id``.
- A custom ``cdp_endpoint`` has no public fallbacks unless listed, so a private gateway's key
  never reaches the public hosts.
- Models are not pydantic: a malformed one raises ``CDPValidationError`` (a ``ValueError``).
- ``close()`` drains the queue and ends the client; keep one client per process.
- ``CDPClient(config, **options)`` takes any ``opencdp.AsyncClient`` option (``queue=``,
  ``retry=``, ...); ``CustomerIoConfig`` takes ``track_url``/``app_url`` overrides.
"""

from .client import CDPClient
from .errors import CDPError, CDPValidationError
from .models import (
    CDPConfig,
    CustomerIoConfig,
    DeviceRegistrationParameters,
    EmailPayload,
    Identifiers,
    PushPayload,
    SmsPayload,
    WhatsAppPayload,
)

__all__ = [
    "CDPClient",
    "CDPConfig",
    "CDPError",
    "CDPValidationError",
    "CustomerIoConfig",
    "DeviceRegistrationParameters",
    "EmailPayload",
    "Identifiers",
    "PushPayload",
    "SmsPayload",
    "WhatsAppPayload",
]
