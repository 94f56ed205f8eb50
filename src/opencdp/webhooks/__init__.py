"""Customer.io reporting webhooks: verify, parse and handle them.

::

    from opencdp.webhooks import WebhookHandler, asgi_app

    handler = WebhookHandler(signing_key, client=client)

    @handler.on("email", "clicked")
    def clicked(event): ...

    app = asgi_app(handler)          # or wsgi_app(handler)

Requests are answered as soon as they are verified (401 on a bad signature, 400 on a bad body,
413 on an oversized one, 200 ``duplicate`` on a replayed ``event_id``); handlers run after the
answer and their errors are logged, never returned, because Customer.io retries anything but a
2xx for seven days.
"""

from __future__ import annotations

from .apps import WebhookASGIApp, WebhookWSGIApp, asgi_app, wsgi_app
from .events import METRICS, Identifiers, WebhookEvent, event_name, parse_event
from .handler import (
    BOUNCE_ATTRIBUTES,
    SPAM_ATTRIBUTES,
    SuppressionClient,
    WebhookHandler,
    WebhookResponse,
)
from .replay import MemoryReplayStore, RedisReplayStore, ReplayStore
from .signature import SignatureFailure, check_signature, sign_payload, verify_signature

__all__ = [
    "BOUNCE_ATTRIBUTES",
    "METRICS",
    "SPAM_ATTRIBUTES",
    "Identifiers",
    "MemoryReplayStore",
    "RedisReplayStore",
    "ReplayStore",
    "SignatureFailure",
    "SuppressionClient",
    "WebhookASGIApp",
    "WebhookEvent",
    "WebhookHandler",
    "WebhookResponse",
    "WebhookWSGIApp",
    "asgi_app",
    "check_signature",
    "event_name",
    "parse_event",
    "sign_payload",
    "verify_signature",
    "wsgi_app",
]
