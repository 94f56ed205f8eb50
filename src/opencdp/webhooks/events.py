"""Typed reporting-webhook events and the table of metrics Customer.io sends.

Parsing is strict about what handling needs (``event_id`` for replay protection, ``metric``,
``timestamp``, an object ``data``) and lenient about the rest: the payload has already passed its
signature check, so it came from Customer.io, and refusing it would make Customer.io retry it
for seven days while holding back every later event. Unknown object types and metrics parse;
optional fields of an unexpected type read as None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from ..errors import ValidationError

__all__ = ["METRICS", "Identifiers", "WebhookEvent", "event_name", "parse_event"]

_SUBSCRIPTION = frozenset({"subscribed", "unsubscribed", "cio_subscription_preferences_changed"})
_MESSAGE = frozenset(
    {"drafted", "attempted", "sent", "clicked", "converted", "failed", "undeliverable"}
)
_SMS = _MESSAGE | {"delivered", "bounced", "replied", "dropped"}

METRICS: Mapping[str, frozenset[str]] = {
    "customer": _SUBSCRIPTION,
    "email": _MESSAGE
    | _SUBSCRIPTION
    | {"delivered", "opened", "bounced", "dropped", "spammed", "deferred"},
    "push": _MESSAGE | _SUBSCRIPTION | {"delivered", "opened", "bounced", "dropped"},
    "sms": _SMS | _SUBSCRIPTION,
    "whatsapp": _SMS | _SUBSCRIPTION | {"opened"},
    "in_app": _MESSAGE | _SUBSCRIPTION | {"opened"},
    "slack": _MESSAGE | _SUBSCRIPTION,
    "webhook": _MESSAGE | _SUBSCRIPTION,
}
"""Metrics per ``object_type`` that Customer.io documents (payload schemas and config lists)."""


def event_name(object_type: str, metric: str) -> str:
    """Customer.io's name for an event type, as in its webhook settings: ``email_bounced``.

    ``cio_subscription_preferences_changed`` is named ``<type>_subscription_preferences_changed``.
    """
    return f"{object_type}_{metric.removeprefix('cio_')}"


@dataclass(frozen=True, slots=True)
class Identifiers:
    """The person an event is about; each may be None (email-only or id-only workspaces)."""

    id: str | None = None
    email: str | None = None
    cio_id: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One reporting-webhook event. ``data`` is the payload's ``data`` object, unchanged."""

    event_id: str
    object_type: str
    metric: str
    timestamp: int
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)
    identifiers: Identifiers = field(default_factory=Identifiers)
    delivery_id: str | None = None
    recipient: str | None = None
    customer_id: str | None = None
    failure_message: str | None = None

    @property
    def name(self) -> str:
        """Customer.io's name for the event type, e.g. ``email_bounced``."""
        return event_name(self.object_type, self.metric)

    @property
    def person_id(self) -> str | None:
        """The person's id in your systems: ``identifiers.id``, else the older ``customer_id``."""
        return self.identifiers.id or self.customer_id or None

    @property
    def email(self) -> str | None:
        """The person's email address when Customer.io sent one."""
        return self.identifiers.email or _opt_str(self.data.get("email_address"))

    @property
    def occurred_at(self) -> datetime:
        """``timestamp`` as an aware UTC datetime."""
        return datetime.fromtimestamp(self.timestamp, tz=timezone.utc)


def _opt_str(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _required_str(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"webhook payload needs a non-empty string {key!r}", field=key)
    return value


def parse_event(payload: bytes | str | Mapping[str, Any]) -> WebhookEvent:
    """Parse a webhook body (raw JSON or an already decoded object) into a :class:`WebhookEvent`.

    Raises :class:`~opencdp.errors.ValidationError` naming the offending field when the body is
    not a JSON object with ``event_id``, ``metric``, an integer ``timestamp`` and an object
    ``data``. A missing ``object_type`` reads as ``customer``: Customer.io's schema for
    subscription-preference changes does not require it, and ``customer`` is its own default.
    """
    if isinstance(payload, (bytes, str)):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise ValidationError("webhook body is not valid JSON", field="body") from None
    if not isinstance(payload, Mapping):
        raise ValidationError("webhook body must be a JSON object", field="body")

    event_id = _required_str(payload, "event_id")
    metric = _required_str(payload, "metric")
    object_type = payload.get("object_type", "customer")
    if not isinstance(object_type, str) or not object_type.strip():
        raise ValidationError(
            "webhook 'object_type' must be a non-empty string", field="object_type"
        )
    timestamp = payload.get("timestamp")
    if isinstance(timestamp, float) and timestamp.is_integer():
        timestamp = int(timestamp)
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        raise ValidationError("webhook 'timestamp' must be Unix seconds", field="timestamp")
    data = payload.get("data", {})
    if not isinstance(data, Mapping):
        raise ValidationError("webhook 'data' must be an object", field="data")
    ids = data.get("identifiers")
    if ids is not None and not isinstance(ids, Mapping):
        raise ValidationError(
            "webhook 'data.identifiers' must be an object", field="data.identifiers"
        )
    ids = ids or {}

    return WebhookEvent(
        event_id=event_id,
        object_type=object_type,
        metric=metric,
        timestamp=timestamp,
        data=data,
        identifiers=Identifiers(
            id=_opt_str(ids.get("id")),
            email=_opt_str(ids.get("email")),
            cio_id=_opt_str(ids.get("cio_id")),
        ),
        delivery_id=_opt_str(data.get("delivery_id")),
        recipient=_opt_str(data.get("recipient")),
        customer_id=_opt_str(data.get("customer_id")),
        failure_message=_opt_str(data.get("failure_message")),
    )
