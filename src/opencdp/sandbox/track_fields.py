"""The Track API's field rules that v1 and v2 share: limits, the identifiers an operation
names, event ids, devices and the event data keys the spec declares.

Kept apart from either version because both read them, and a rule checked one way in v1
and another in v2 is exactly the drift the sandbox exists to catch.
"""

from __future__ import annotations

from typing import Any, Final

from .http import Reject, Response
from .store import ServiceStore
from .validate import E164, ULID_RE, check_id, check_obj, check_str, check_timestamp

__all__ = ["BATCH_LIMIT", "DECLARED", "DECLARED_KEYS", "DELIVERY_METRICS", "EMPTY",
           "ENTITY_LIMIT", "EVENT_DATA_LIMIT", "EVENT_TYPES", "FORM_RESERVED", "JSON",
           "MERGE_IDS", "NO_AUTH", "NO_CONTENT", "PERSON_IDS", "PLATFORMS", "SEGMENT_IDS_LIMIT",
           "V1_METRICS", "check_declared", "check_device", "check_event_id", "check_ident",
           "ok"]

ENTITY_LIMIT: Final = 32 * 1024
BATCH_LIMIT: Final = 500 * 1024
EVENT_DATA_LIMIT: Final = 100_000
SEGMENT_IDS_LIMIT: Final = 1000
PERSON_IDS: Final = ("id", "email", "phone", "cio_id")
MERGE_IDS: Final = ("id", "email", "cio_id")
PLATFORMS: Final = ("ios", "android")
EVENT_TYPES: Final = ("event", "page", "screen")
DELIVERY_METRICS: Final = ("opened", "converted", "delivered")
V1_METRICS: Final = ("bounced", "clicked", "converted", "deferred", "delivered", "dropped",
                     "opened", "spammed")
FORM_RESERVED: Final = ("form_id", "form_name", "form_type", "form_url", "form_url_param")
NO_AUTH: Final = frozenset({"metrics", "push_events", "unsubscribe"})
EMPTY: Final = b"{}"
JSON: Final = [(b"content-type", b"application/json")]
NO_CONTENT: Final[Response] = (204, b"", [])


# Event data keys the spec declares, with their types, per event type.
DECLARED: Final[dict[str, dict[str, type]]] = {
    "event": {"recipient": str, "from_address": str, "reply_to": str},
    "page": {"path": str, "referrer": str, "search": str, "title": str, "url": str,
             "keywords": list, "recipient": str, "from_address": str, "reply_to": str},
    "screen": {"recipient": str, "from_address": str, "reply_to": str},
}
DECLARED_KEYS: Final = frozenset(k for keys in DECLARED.values() for k in keys)



def check_declared(data: dict[str, Any], etype: str, field: str) -> None:
    for key, kind in DECLARED.get(etype, DECLARED["event"]).items():
        value = data.get(key)
        if value is not None and type(value) is not kind:
            raise Reject(400, "invalid_type", f"{field}.{key} must be a "
                         f"{'list' if kind is list else 'string'}", f"{field}.{key}")


def check_ident(raw: Any, field: str, allowed: tuple[str, ...]) -> tuple[str, str]:
    """Exactly one identifier out of ``allowed``; returns (kind, value)."""
    if type(raw) is dict and len(raw) == 1:
        value = raw.get("id")  # the common case, checked inline: a short non-blank string
        if type(value) is str and 0 < len(value) <= 37 and not value.isspace():
            return "id", value
    if type(raw) is not dict:
        raise Reject(400, "missing_field" if raw is None else "invalid_type",
                     f"{field} is required and must be an object", field)
    if len(raw) != 1:
        raise Reject(400, "invalid_identifier",
                     f"{field} must hold exactly one of {', '.join(allowed)}", field)
    ((kind, value),) = raw.items()
    if kind not in allowed:
        hint = ""
        if kind == "anonymous_id":
            hint = " (anonymous events go to POST /api/v1/events)"
        raise Reject(400, "invalid_identifier",
                     f"{field} must hold exactly one of {', '.join(allowed)}{hint}",
                     f"{field}.{kind}")
    if kind == "id":
        return kind, check_id(value, f"{field}.id")
    value = check_str(value, f"{field}.{kind}")
    if kind == "phone" and not E164.match(value):
        raise Reject(400, "invalid_phone", f"{field}.phone must be E.164 (+ and up to 15 digits)",
                     f"{field}.phone")
    if kind == "email" and "@" not in value:
        raise Reject(400, "invalid_value", f"{field}.email is not an email address",
                     f"{field}.email")
    return kind, value


def check_event_id(value: Any, field: str = "id") -> str | None:
    if value is None:
        return None
    if type(value) is not str or not ULID_RE.match(value):
        raise Reject(400, "invalid_event_id", f"{field} must be a ULID (26 Crockford base32 "
                     "characters)", field)
    return value.upper()


def check_device(raw: Any, token_key: str, strict: bool, field: str = "device") -> dict[str, Any]:
    device = check_obj(raw, field)
    token = device.get(token_key)
    if type(token) is not str or not token:
        raise Reject(400, "missing_field", f"{field}.{token_key} is required (the push token)",
                     f"{field}.{token_key}")
    platform = device.get("platform")
    if platform not in PLATFORMS:
        raise Reject(400, "invalid_enum", f"{field}.platform must be one of ios, android",
                     f"{field}.platform")
    out: dict[str, Any] = {"id": token, "platform": platform}
    last_used = device.get("last_used")
    if last_used is not None:
        out["last_used"] = check_timestamp(last_used, f"{field}.last_used", strict)
    attrs = device.get("attributes")
    if attrs is not None:
        out["attributes"] = check_obj(attrs, f"{field}.attributes")
    for key, value in device.items():
        if key not in out and key != token_key and key not in ("last_used", "attributes"):
            out.setdefault("attributes", {})[key] = value
    return out


def ok(st: ServiceStore, n: int = 1) -> Response:
    st.accepted += n
    return 200, EMPTY, JSON
