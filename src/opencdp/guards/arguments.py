"""The arguments of the calls that are not identify or track: event ids, devices, merges.

Each of these is refused at the call with its own code, because after the call returned the
only symptom would be a dead letter (a device without a push token is useless to Customer.io,
a merge with two identifiers per side is refused by it) or a silently duplicated event (an
event id that is not a ULID cannot de-duplicate retries).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ..message import parse_ulid
from ._core import Reporter, Rule
from .attributes import PropertiesNotMapping
from .identifiers import check_identifier
from .timestamps import to_seconds
from .values import as_mapping, snapshot

__all__ = [
    "BadDevicePlatform",
    "BadEventId",
    "BadMergeSide",
    "DeviceAttributesNotMapping",
    "PushTokenMissing",
    "check_device",
    "check_event_id",
    "check_merge",
]

PLATFORMS: Final = ("ios", "android", "web")
MERGE_KEYS: Final = ("id", "email", "cio_id")
_ULID_MAX: Final = 1 << 128


class BadEventId(Rule):
    """An ``event_id`` that is not a ULID (26 Crockford base32 characters).

    The event id is the message's identity: Customer.io de-duplicates events by it and the
    client's idempotency guard drops a repeated id. Pass the ULID you stored with the event
    (any ULID library makes one), or leave ``event_id`` out and one is assigned.
    """

    code = "OCDP151"
    severity = "error"
    message = "event_id must be a ULID string (26 Crockford base32 characters)"
    silenceable = False
    bad = ('client.track("42", "order_placed", event_id="order-1001")',
           'client.track("42", "order_placed", event_id=12.5)')
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", event_id="01HZX3Q4T0V5B8K2M7N9P6R1S3")',)


class BadDevicePlatform(Rule):
    """A device platform other than ``"ios"``, ``"android"`` or ``"web"``.

    Customer.io routes pushes by platform (APNs or FCM), so a misspelt platform is a device
    that never receives anything.
    """

    code = "OCDP152"
    severity = "error"
    message = "platform must be 'ios', 'android' or 'web'"
    silenceable = False
    bad = ('client.register_device("42", "dev-1", "iOS", apn_token="a1b2c3")',)
    good = ('client.register_device("42", "dev-1", "ios", apn_token="a1b2c3")',)


class PushTokenMissing(Rule):
    """A device registered without a push token (``fcm_token`` or ``apn_token``).

    Customer.io keys devices by their push token and delivers to it; a device without one
    cannot be addressed. The token must be non-empty text.
    """

    code = "OCDP153"
    severity = "error"
    message = "register_device needs fcm_token or apn_token (the push token, as text)"
    silenceable = False
    bad = ('client.register_device("42", "dev-1", "android")',
           'client.register_device("42", "dev-1", "android", fcm_token=12345)')
    good = ('client.register_device("42", "dev-1", "android", fcm_token="fcm-token-1")',)


class DeviceAttributesNotMapping(Rule):
    """Device ``attributes`` are a dict of named values, like a person's attributes."""

    code = "OCDP154"
    severity = "error"
    message = "device attributes must be a dict"
    silenceable = False
    bad = ('client.register_device("42", "dev-1", "ios", apn_token="a1b2c3", '
           'attributes=["dark_mode"])',)
    good = ('client.register_device("42", "dev-1", "ios", apn_token="a1b2c3", '
            'attributes={"dark_mode": True})',)


class BadMergeSide(Rule):
    """A side of ``merge_people`` that is not exactly one of ``id``, ``email`` or ``cio_id``.

    Customer.io merges two people named by one identifier each; ``{"id": "42"}`` is a side,
    ``"42"`` or ``{"id": "42", "email": ...}`` is not.
    """

    code = "OCDP155"
    severity = "error"
    message = "each merge side holds exactly one of id, email or cio_id, e.g. {'id': '42'}"
    silenceable = False
    bad = ('client.merge_people("42", {"id": "43"})',
           'client.merge_people({"id": "42", "email": "a@example.com"}, {"id": "43"})')
    good = ('client.merge_people({"id": "42"}, {"email": "old@example.com"})',)


def check_event_id(value: object, reporter: Reporter) -> int:
    """A caller's event id (ULID text, or the ULID as an int) as the 128-bit message id."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _ULID_MAX:
        return value
    if isinstance(value, str):
        try:
            return parse_ulid(value.strip())
        except ValueError as exc:
            raise reporter.refuse(BadEventId, "event_id", str(exc)) from None
    raise reporter.refuse(BadEventId, "event_id", f"event_id is {type(value).__name__}")


def check_device(
    user_id: object, device_id: object, platform: object, fields: object, reporter: Reporter
) -> tuple[str, str, dict[str, Any]]:
    """Person id, device id and the device's fields (a snapshot, ``platform`` included).

    ``fields`` holds register_device's keyword arguments; None values are left out and
    ``last_used`` becomes Unix seconds.
    """
    uid = check_identifier(user_id, "user_id", reporter)
    did = check_identifier(device_id, "device_id", reporter)
    if type(platform) is not str or platform not in PLATFORMS:
        shown = repr(platform)[:20] if isinstance(platform, str) else type(platform).__name__
        raise reporter.refuse(BadDevicePlatform, "platform", f"platform is {shown}")
    if not isinstance(fields, Mapping):
        raise reporter.refuse(PropertiesNotMapping, "fields",
                              f"fields is {type(fields).__name__}")
    raw = {k: v for k, v in fields.items() if v is not None}
    tokens = [raw[k] for k in ("fcm_token", "apn_token") if k in raw]
    if not tokens:
        raise reporter.refuse(PushTokenMissing, "fcm_token", "no push token")
    for key in ("fcm_token", "apn_token"):
        token = raw.get(key)
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise reporter.refuse(PushTokenMissing, key, f"{key} is not a non-empty str")
    last_used = raw.pop("last_used", None)
    if "attributes" in raw:
        attributes = as_mapping(raw["attributes"])
        if attributes is None:
            raise reporter.refuse(DeviceAttributesNotMapping, "attributes",
                                  f"attributes is {type(raw['attributes']).__name__}")
        raw["attributes"] = attributes
    data = snapshot(raw, "", reporter)
    data["platform"] = platform
    if last_used is not None:
        data["last_used"] = to_seconds(last_used, "last_used", reporter)
    return uid, did, data


def check_merge(primary: object, secondary: object, reporter: Reporter
                ) -> tuple[str, dict[str, dict[str, str]]]:
    """The label (the primary's identifier) and both sides, each ``{kind: identifier}``."""
    sides: dict[str, dict[str, str]] = {}
    for field, value in (("primary", primary), ("secondary", secondary)):
        if not isinstance(value, Mapping) or len(value) != 1:
            kind = f"{len(value)} keys" if isinstance(value, Mapping) else type(value).__name__
            raise reporter.refuse(BadMergeSide, field, f"{field} is {kind}")
        key, val = next(iter(value.items()))
        if key not in MERGE_KEYS:
            raise reporter.refuse(BadMergeSide, field, f"{field} is keyed by {str(key)[:20]!r}")
        sides[field] = {key: check_identifier(val, f"{field}.{key}", reporter,
                                              shape=key != "email")}
    return next(iter(sides["primary"].values())), sides
