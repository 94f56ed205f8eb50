"""Checks shared by the emulated services: ids, timestamps, phones, sizes.

Each check raises ``Reject`` with a stable ``reason`` (the key under which stats count it)
and the offending field. They run once per batch operation, so each is a few comparisons
on the common path and only measures bytes when a value could be over a limit.
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from .http import Reject

__all__ = [
    "E164",
    "MS_THRESHOLD",
    "ULID_RE",
    "byte_len",
    "check_attributes",
    "check_event_name",
    "check_id",
    "check_obj",
    "check_relationships",
    "check_str",
    "check_timestamp",
    "check_v1_relationships",
    "join",
    "require",
]

MS_THRESHOLD: Final = 100_000_000_000  # 10**11 s is the year 5138; anything above is ms
MAX_INT64: Final = 2**63 - 1
E164: Final = re.compile(r"^\+[1-9]\d{1,14}$")
ULID_RE: Final = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", re.IGNORECASE)
MAX_ID_BYTES: Final = 150
MAX_ATTR_NAME: Final = 150
MAX_ATTR_VALUE: Final = 1000
MAX_ATTRS: Final = 300
MAX_EVENT_NAME: Final = 100
TIMESTAMP_ATTRS: Final = ("created_at", "_timestamp")


def join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def byte_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def require(body: dict[str, Any], name: str, where: str = "") -> Any:
    value = body.get(name)
    if value is None:
        raise Reject(400, "missing_field", f"{where}{name} is required", f"{where}{name}")
    return value


def check_obj(value: Any, field: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise Reject(400, "invalid_type", f"{field} must be an object", field)
    return value


def check_str(value: Any, field: str, *, empty: bool = False) -> str:
    if type(value) is not str:
        raise Reject(400, "invalid_type", f"{field} must be a string", field)
    if not empty and not value.strip():
        raise Reject(400, "invalid_value", f"{field} must not be empty", field)
    return value


def check_id(value: Any, field: str) -> str:
    """A person id: a non-empty string (integers are accepted, as the real API does)."""
    if type(value) is int:
        value = str(value)
    elif type(value) is not str:
        raise Reject(400, "invalid_type", f"{field} must be a string", field)
    text: str = value
    if not text.strip():
        raise Reject(400, "invalid_identifier", f"{field} must not be empty", field)
    if len(text) > MAX_ID_BYTES // 4 and byte_len(text) > MAX_ID_BYTES:
        raise Reject(400, "limit_exceeded",
                     f"{field} is longer than {MAX_ID_BYTES} bytes", field)
    return text


def check_timestamp(value: Any, field: str, strict: bool = False) -> int:
    """Unix seconds; strings are refused by name. Customer.io accepts milliseconds (and then
    reads a date thousands of years ahead); ``strict`` refuses them, the commonest bug."""
    if type(value) is not int:
        raise Reject(400, "invalid_timestamp",
                     f"{field} must be an integer Unix timestamp in seconds", field)
    if value >= MS_THRESHOLD:
        if strict:
            raise Reject(400, "timestamp_milliseconds",
                         f"{field} {value} looks like milliseconds; send Unix seconds", field)
        if value > MAX_INT64:
            raise Reject(400, "invalid_timestamp", f"{field} is out of range", field)
    if value < 0:
        raise Reject(400, "invalid_timestamp", f"{field} must not be negative", field)
    return value


def check_event_name(value: Any, field: str = "name") -> str:
    if type(value) is not str:
        raise Reject(400, "missing_field" if value is None else "invalid_type",
                     f"{field} is required and must be a string", field)
    name = value.strip()
    if not name:
        raise Reject(400, "invalid_value", f"{field} must not be empty", field)
    if len(name) > MAX_EVENT_NAME // 4 and byte_len(name) > MAX_EVENT_NAME:
        raise Reject(400, "limit_exceeded", f"{field} is longer than {MAX_EVENT_NAME} bytes",
                     field)
    return name


def _value_too_big(value: Any) -> bool:
    t = type(value)
    if t is str:
        return len(value) > MAX_ATTR_VALUE // 4 and byte_len(value) > MAX_ATTR_VALUE
    if t is dict or t is list:
        return len(orjson.dumps(value)) > MAX_ATTR_VALUE
    return False


def check_attributes(attrs: Any, field: str, strict: bool = False) -> dict[str, Any]:
    """Customer.io's attribute limits: 300 per call, names <= 150 B, values <= 1000 B.
    ``field`` is empty for v1's flat body, which is then named "the body"."""
    subject = field or "the body"
    if type(attrs) is not dict:
        raise Reject(400, "invalid_type", f"{subject} must be an object", field or "body")
    if len(attrs) > MAX_ATTRS:
        raise Reject(400, "limit_exceeded",
                     f"{subject} has {len(attrs)} attributes; the limit is {MAX_ATTRS}",
                     field or "body")
    for key, value in attrs.items():
        if len(key) > MAX_ATTR_NAME // 4 and byte_len(key) > MAX_ATTR_NAME:
            raise Reject(400, "limit_exceeded",
                         f"attribute name {key[:40]!r}... is longer than {MAX_ATTR_NAME} bytes",
                         join(field, key[:40]))
        if _value_too_big(value):
            raise Reject(400, "limit_exceeded",
                         f"attribute {key!r} is longer than {MAX_ATTR_VALUE} bytes",
                         join(field, key))
    if not RESERVED_ATTRS.isdisjoint(attrs):
        _check_reserved(attrs, field, strict)
    return attrs


RESERVED_ATTRS: Final = frozenset({*TIMESTAMP_ATTRS, "_update", "email", "anonymous_id",
                                   "unsubscribed", "cio_subscription_preferences"})


def _check_reserved(attrs: dict[str, Any], field: str, strict: bool) -> None:
    """The attributes the Track spec declares, each with its declared type."""
    for name in TIMESTAMP_ATTRS:
        if attrs.get(name) is not None:
            check_timestamp(attrs[name], join(field, name), strict)
    upd = attrs.get("_update")
    if upd is not None and type(upd) is not bool:
        raise Reject(400, "invalid_type", "_update must be a boolean", join(field, "_update"))
    for name in ("email", "anonymous_id"):
        value = attrs.get(name)
        if value is not None and type(value) is not str:
            raise Reject(400, "invalid_type", f"{name} must be a string", join(field, name))
    unsub = attrs.get("unsubscribed")
    if unsub is not None and type(unsub) not in (bool, str, int):
        # The docs also accept "true"/"1"/1 in any case, so strings and ints pass.
        raise Reject(400, "invalid_type", "unsubscribed must be a boolean",
                     join(field, "unsubscribed"))
    prefs = attrs.get("cio_subscription_preferences")
    if prefs is not None:
        name = join(field, "cio_subscription_preferences")
        if type(prefs) is not dict:
            raise Reject(400, "invalid_type", f"{name} must be an object", name)
        topics = prefs.get("topics")
        if topics is not None and (type(topics) is not dict or any(
                type(v) is not bool for v in topics.values())):
            raise Reject(400, "invalid_type", f"{name}.topics must map topic_<id> to booleans",
                         f"{name}.topics")


def check_v1_relationships(value: Any) -> None:
    """v1 identify's ``cio_relationships``: ``{"action", "relationships": [...]}``."""
    if type(value) is not dict:
        raise Reject(400, "invalid_type", "cio_relationships must be an object",
                     "cio_relationships")
    action = value.get("action")
    if action is not None and action not in ("add_relationships", "delete_relationships"):
        raise Reject(400, "invalid_enum", "cio_relationships.action must be add_relationships "
                     "or delete_relationships", "cio_relationships.action")
    rels = value.get("relationships")
    if rels is not None:
        check_relationships(rels, "cio_relationships.relationships")


def check_relationships(value: Any, field: str) -> list[Any]:
    if type(value) is not list or any(type(r) is not dict for r in value):
        raise Reject(400, "invalid_type", f"{field} must be a list of objects", field)
    for i, rel in enumerate(value):
        ids = rel.get("identifiers")
        if ids is not None and type(ids) is not dict:
            raise Reject(400, "invalid_type", f"{field}[{i}].identifiers must be an object",
                         f"{field}.identifiers")
        attrs = rel.get("relationship_attributes")
        if attrs is not None and type(attrs) is not dict:
            raise Reject(400, "invalid_type",
                         f"{field}[{i}].relationship_attributes must be an object",
                         f"{field}.relationship_attributes")
    return value
