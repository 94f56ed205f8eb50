"""The rest of Customer.io's Track API: other person identifiers, objects and relationships,
page and screen views, delivery metrics and manual segments.

Every one of these goes to Customer.io through a queue, so a mistake that Customer.io would
answer with a 400 is refused here, at the call, with its own code: afterwards the only symptom
would be a dead letter. The shapes are those of the Track OpenAPI document
(``spec/customerio/track-api.openapi.json``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from ._core import Reporter, Rule
from .attributes import PropertiesNotMapping
from .identifiers import check_identifier
from .values import as_mapping, snapshot

__all__ = [
    "DELIVERY_METRICS",
    "PERSON_IDENTIFIERS",
    "PUSH_METRICS",
    "SEGMENT_ID_TYPES",
    "BadDelivery",
    "BadObjectIdentifiers",
    "BadPersonIdentifiers",
    "BadRelationships",
    "BadSegmentMembership",
    "EmptyViewName",
    "check_attributes",
    "check_delivery",
    "check_object",
    "check_person",
    "check_relationships",
    "check_segment",
    "check_view_name",
]

PERSON_IDENTIFIERS: Final = ("id", "email", "cio_id", "phone")
DELIVERY_METRICS: Final = ("bounced", "clicked", "converted", "deferred", "delivered",
                           "dropped", "opened", "spammed")
PUSH_METRICS: Final = ("opened", "converted", "delivered")
SEGMENT_ID_TYPES: Final = ("id", "email", "cio_id")
MAX_SEGMENT_IDS: Final = 1000
MAX_OBJECT_ID_BYTES: Final = 150
E164: Final = re.compile(r"\+[1-9]\d{1,14}")
EMAIL: Final = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")


class BadPersonIdentifiers(Rule):
    """Track v2 addresses a person by exactly one of ``id``, ``email``, ``cio_id`` or
    ``phone`` (E.164, such as ``+15551234567``).

    Two identifiers, an unknown key or a phone number in local format are refused by
    Customer.io with a 400 for the whole operation, after the call returned.
    """

    code = "OCDP180"
    severity = "error"
    message = ("identifiers hold exactly one of id, email, cio_id or phone (E.164), "
               "e.g. {'email': 'ada@example.com'}")
    silenceable = False
    bad = ('client.identify_by({"email": "ada@example.com", "id": "42"})',
           'client.identify_by({"phone": "020 7946 0958"})',
           'client.suppress_by({"user": "42"})')
    good = ('client.identify_by({"email": "ada@example.com"}, {"plan": "pro"})',
            'client.suppress_by({"phone": "+442079460958"})')


class BadObjectIdentifiers(Rule):
    """An object is named by its type's numeric id (as text: ``"1"``) and its own id.

    Customer.io object types are created in the workspace and numbered; the type's name
    (``"company"``) is not its id, and an operation naming it is refused. Object ids are at
    most 150 bytes.
    """

    code = "OCDP181"
    severity = "error"
    message = ("objects are named by object_type_id (the type's number as text, e.g. '1') and "
               "a non-empty object_id of at most 150 bytes")
    silenceable = False
    bad = ('client.identify_object("company", "acme")',
           'client.delete_object("1", "")')
    good = ('client.identify_object("1", "acme", {"name": "Acme"})',
            'client.delete_object(1, "acme")')


class BadRelationships(Rule):
    """Relationships are a non-empty list of objects, each
    ``{"object_type_id": "1", "object_id": "acme"}`` (or ``{"cio_object_id": ...}``) with
    optional ``attributes`` for the relationship itself."""

    code = "OCDP182"
    severity = "error"
    message = ("relationships are a non-empty list of {'object_type_id': '1', 'object_id': "
               "'acme', 'attributes': {...}}")
    silenceable = False
    bad = ('client.add_relationships("42", [])',
           'client.add_relationships("42", {"object_type_id": "1", "object_id": "acme"})',
           'client.add_relationships("42", [{"object_id": "acme", "attributes": ["admin"]}])')
    good = ('client.add_relationships("42", [{"object_type_id": "1", "object_id": "acme", '
            '"attributes": {"role": "admin"}}])',)


class EmptyViewName(Rule):
    """A page view names its URL or path, a screen view its screen: Customer.io files the
    view under that name, and an empty one is refused."""

    code = "OCDP183"
    severity = "error"
    message = "page views need the page's URL or path and screen views the screen's name"
    silenceable = False
    bad = ('client.page("42", "")', 'client.screen("42", None)')
    good = ('client.page("42", "https://example.com/pricing")',
            'client.screen("42", "Checkout")')


class BadDelivery(Rule):
    """A delivery metric names the delivery (its ``CIO-Delivery-ID``) and one of the
    metrics the spec lists; a push metric also needs the device token that received it.

    Customer.io cannot attribute a metric to anything else, and answers a misspelt metric
    with a 400.
    """

    code = "OCDP184"
    severity = "error"
    message = ("delivery metrics need the delivery id, a metric the spec lists (push: opened, "
               "converted, delivered) and, for push, the device token")
    silenceable = False
    bad = ('client.report_metric("RPILAgUBcRhIBqSfeiIwdIYJKxTY", "open")',
           'client.report_push_metric("RPILAgUBcRhIBqSfeiIwdIYJKxTY", "opened", "")',
           'client.unsubscribe_delivery("")')
    good = ('client.report_metric("RPILAgUBcRhIBqSfeiIwdIYJKxTY", "clicked", '
            'href="https://example.com")',
            'client.report_push_metric("RPILAgUBcRhIBqSfeiIwdIYJKxTY", "opened", "tok-1")')


class BadSegmentMembership(Rule):
    """Manual segments are numbered, and take 1 to 1000 people per request, all named by
    the same kind of identifier (``id_type``: ``id``, ``email`` or ``cio_id``).

    Customer.io silently ignores ids that do not match ``id_type``, so a list mixing ids and
    emails loses people without an error.
    """

    code = "OCDP185"
    severity = "error"
    message = ("segment membership takes the manual segment's number, 1 to 1000 ids and an "
               "id_type of id, email or cio_id")
    silenceable = False
    bad = ('client.add_to_segment("vip", ["42"])',
           'client.add_to_segment(7, [])',
           'client.remove_from_segment(7, ["42"], id_type="phone")',
           'client.add_to_segment(7, ["u%d" % i for i in range(1001)])')
    good = ('client.add_to_segment(7, ["42", "43"])',
            'client.remove_from_segment(7, ["ada@example.com"], id_type="email")')


def _text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def check_person(value: object, reporter: Reporter) -> tuple[str, str]:
    """``(kind, value)`` of a Track v2 person identifier mapping (``cio_`` prefix dropped)."""
    if not isinstance(value, Mapping):
        raise reporter.refuse(BadPersonIdentifiers, "identifiers",
                              f"identifiers is {type(value).__name__}")
    present = {k: v for k, v in value.items() if v is not None}
    if len(present) != 1:
        raise reporter.refuse(BadPersonIdentifiers, "identifiers",
                              f"identifiers hold {len(present)} keys")
    ((kind, raw),) = present.items()
    if kind not in PERSON_IDENTIFIERS:
        raise reporter.refuse(BadPersonIdentifiers, "identifiers",
                              f"identifiers are keyed by {str(kind)[:20]!r}")
    field = f"identifiers.{kind}"
    if kind == "id":
        return kind, check_identifier(raw, field, reporter)
    text = check_identifier(raw, field, reporter, shape=False)
    if kind == "phone" and not E164.fullmatch(text):
        raise reporter.refuse(BadPersonIdentifiers, field, "phone is not E.164")
    if kind == "email" and not EMAIL.fullmatch(text):
        raise reporter.refuse(BadPersonIdentifiers, field, "email is not an email address")
    if kind == "cio_id" and text.startswith("cio_"):
        text = text[4:]
        if not text:
            raise reporter.refuse(BadPersonIdentifiers, field, "cio_id is empty")
    return kind, text


def check_attributes(value: object, field: str, reporter: Reporter) -> dict[str, Any]:
    """A mapping of named values as a frozen snapshot (None is an empty one)."""
    if value is None:
        return {}
    mapping = as_mapping(value)
    if mapping is None:
        raise reporter.refuse(PropertiesNotMapping, field, f"{field} is {type(value).__name__}")
    return snapshot(dict(mapping.items()), field, reporter, True)


def check_object(type_id: object, object_id: object, reporter: Reporter,
                 field: str = "object") -> tuple[str, str]:
    """``(object_type_id, object_id)`` as text."""
    tid = _text(type_id)
    if tid is None or not tid.isdigit() or not tid.isascii():
        raise reporter.refuse(BadObjectIdentifiers, f"{field}_type_id",
                              "object_type_id is not a type number")
    oid = _text(object_id)
    if oid is None:
        raise reporter.refuse(BadObjectIdentifiers, f"{field}_id", "object_id is empty")
    if _bytes(oid) > MAX_OBJECT_ID_BYTES:
        raise reporter.refuse(BadObjectIdentifiers, f"{field}_id",
                              f"object_id is {_bytes(oid)} bytes")
    return tid, oid


def check_relationships(value: object, reporter: Reporter) -> list[dict[str, Any]]:
    """The wire form: ``[{"identifiers": {...}, "relationship_attributes"?: {...}}]``."""
    if not isinstance(value, (list, tuple)) or not value:
        shown = "empty" if isinstance(value, (list, tuple)) else type(value).__name__
        raise reporter.refuse(BadRelationships, "relationships", f"relationships is {shown}")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(value):
        field = f"relationships[{i}]"
        if not isinstance(raw, Mapping):
            raise reporter.refuse(BadRelationships, field, f"{field} is {type(raw).__name__}")
        unknown = sorted(str(k) for k in raw
                         if k not in ("object_type_id", "object_id", "cio_object_id",
                                      "attributes"))
        if unknown:
            raise reporter.refuse(BadRelationships, field, f"{field} has {unknown[0][:20]!r}")
        if raw.get("cio_object_id") is not None:
            cio = _text(raw["cio_object_id"])
            if cio is None:
                raise reporter.refuse(BadRelationships, field, f"{field}.cio_object_id is empty")
            ids: dict[str, str] = {"cio_object_id": cio}
        elif raw.get("object_type_id") is None or raw.get("object_id") is None:
            raise reporter.refuse(BadRelationships, field,
                                  f"{field} needs object_type_id and object_id")
        else:
            tid, oid = check_object(raw["object_type_id"], raw["object_id"], reporter,
                                    f"{field}.object")
            ids = {"object_type_id": tid, "object_id": oid}
        rel: dict[str, Any] = {"identifiers": ids}
        attrs = raw.get("attributes")
        if attrs is not None:
            if as_mapping(attrs) is None:
                raise reporter.refuse(BadRelationships, f"{field}.attributes",
                                      f"{field}.attributes is {type(attrs).__name__}")
            rel["relationship_attributes"] = check_attributes(attrs, f"{field}.attributes",
                                                              reporter)
        out.append(rel)
    return out


def check_view_name(value: object, field: str, reporter: Reporter) -> str:
    """The URL of a page view or the name of a screen view."""
    if not isinstance(value, str) or not value.strip():
        shown = "empty" if isinstance(value, str) else type(value).__name__
        raise reporter.refuse(EmptyViewName, field, f"{field} is {shown}")
    text = value.strip()
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise reporter.refuse(EmptyViewName, field, f"{field} has a lone surrogate") from None
    return text


def check_delivery(delivery_id: object, metric: object, reporter: Reporter,
                   metrics: tuple[str, ...] = DELIVERY_METRICS,
                   device_token: object = "") -> tuple[str, str | None]:
    """``(delivery id, metric)``; ``metrics=()`` checks the delivery id alone, and a
    ``device_token`` of None requires one (push metrics)."""
    did = _text(delivery_id)
    if did is None or isinstance(delivery_id, int):
        raise reporter.refuse(BadDelivery, "delivery_id", "delivery_id is not a non-empty str")
    if not metrics:
        return did, None
    if not isinstance(metric, str) or metric not in metrics:
        shown = repr(metric)[:20] if isinstance(metric, str) else type(metric).__name__
        raise reporter.refuse(BadDelivery, "metric", f"metric is {shown}")
    if device_token is None:
        raise reporter.refuse(BadDelivery, "device_token", "device_token is missing")
    return did, metric


def check_segment(segment_id: object, ids: object, id_type: object, reporter: Reporter
                  ) -> tuple[str, str, list[str]]:
    """``(segment id, id_type, ids)`` for a manual segment's add or remove."""
    sid = _text(segment_id)
    if sid is None or not sid.isdigit() or not sid.isascii() or int(sid) < 1:
        raise reporter.refuse(BadSegmentMembership, "segment_id", "segment_id is not a number")
    if not isinstance(id_type, str) or id_type not in SEGMENT_ID_TYPES:
        raise reporter.refuse(BadSegmentMembership, "id_type", "id_type is not id/email/cio_id")
    if isinstance(ids, (str, bytes)) or not isinstance(ids, (list, tuple, set, frozenset)):
        raise reporter.refuse(BadSegmentMembership, "ids", f"ids is {type(ids).__name__}")
    if not 1 <= len(ids) <= MAX_SEGMENT_IDS:
        raise reporter.refuse(BadSegmentMembership, "ids", f"ids hold {len(ids)}")
    out: list[str] = []
    for raw in ids:
        if id_type == "id":
            out.append(check_identifier(raw, "ids", reporter))
        else:
            out.append(check_person({id_type: raw}, reporter)[1])
    return sid, id_type, out
