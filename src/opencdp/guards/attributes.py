"""Attributes and properties: JSON that every destination can store, at stable types.

The rules about values live here; the walk that applies them and freezes the call's data
into a snapshot is in ``values``. Customer.io's own size limits (``AttributeLimits``,
``EventDataTooLarge``) are applied per message by ``customerio_refusal``, so a value only
Customer.io refuses costs the Customer.io copy alone.
"""

from __future__ import annotations

from typing import Final

from ._core import Rule

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_EVENT_BYTES",
    "MAX_NAME_BYTES",
    "MAX_VALUE_BYTES",
    "AttributeLimits",
    "AttributeTypeDrift",
    "DataTooDeep",
    "EventDataTooLarge",
    "IdentifyWithoutEmail",
    "NonFiniteNumber",
    "NotJSONValue",
    "PropertiesNotMapping",
    "UnencodableText",
]

MAX_ATTRIBUTES: Final = 300
MAX_NAME_BYTES: Final = 150
MAX_VALUE_BYTES: Final = 1000
MAX_EVENT_BYTES: Final = 100_000


class AttributeTypeDrift(Rule):
    """The same attribute sent as a string once and as a number (or bool, list...) later.

    Customer.io types an attribute by its values; mixed types break segment conditions
    (``plan = 1`` never matches ``"premium"``). Reported once per attribute name.
    """

    code = "OCDP130"
    severity = "warning"
    message = "attribute changed type since it was first sent; send one type per attribute"
    bad = ('client.identify("1", {"email": "a@example.com", "plan": "premium"})\n'
           'client.identify("2", {"email": "b@example.com", "plan": 1})',)
    good = ('client.identify("1", {"email": "a@example.com", "plan": "premium"})\n'
            'client.identify("2", {"email": "b@example.com", "plan": "basic"})',
            'client.identify("1", {"email": "a@example.com", "score": 1})\n'
            'client.identify("2", {"email": "b@example.com", "score": 2.5})')


class IdentifyWithoutEmail(Rule):
    """An identify call without ``email``: the person cannot receive email campaigns.

    Often intended (email known later, push-only users), so this is a debug-level hint by
    default; ``GuardPolicy(email_hint="warning")`` makes it a warning, ``"off"`` removes it.
    """

    code = "OCDP131"
    severity = "debug"
    message = "identify without an email attribute; include email for email campaigns"
    bad = ('client.identify("42", {"name": "Ada"})',)
    good = ('client.identify("42", {"email": "ada@example.com", "name": "Ada"})',)


class NotJSONValue(Rule):
    """A value the wire encoder cannot carry: bytes, sets, objects, non-string keys, big ints.

    Refused at the call with the path of the bad value (``properties.items[3].sku``), so it
    never reaches a queue where it would fail a whole batch. Friendly types are converted by
    fixed rules instead (see "Values" above the table): ``datetime`` becomes Unix seconds,
    ``date`` an ISO date, ``UUID`` its text, an ``Enum`` its value, a tuple a list, a
    ``Decimal`` the JSON number with the same value. Integers must fit in 64 bits
    (-2^63 to 2^64-1); a ``Decimal`` a float would round is refused (send it as text).
    """

    code = "OCDP132"
    severity = "error"
    message = "value is not JSON-serialisable; convert it to str, int, float, bool, list or dict"
    silenceable = False
    bad = ('client.track("42", "order_placed", {"items": [{"sku": b"A1"}]})',
           'client.track("42", "order_placed", {"tags": {"new", "sale"}})',
           'client.track("42", "order_placed", {"total": Decimal("9.990000000000000000001")})',
           'client.track("42", "order_placed", {"by_sku": {1001: 2}})',
           'client.track("42", "order_placed", {"big": 2**64})')
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", {"total": Decimal("9.99"), '
            '"tags": sorted({"new", "sale"}), "items": [{"sku": "A1"}], "by_sku": {"1001": 2}})',)


class NonFiniteNumber(Rule):
    """NaN and Infinity are not JSON; most encoders emit invalid documents or fail later."""

    code = "OCDP133"
    severity = "error"
    message = "value is NaN or Infinity; send null or a finite number"
    silenceable = False
    bad = ('client.track("42", "order_placed", {"total": float("nan")})',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", {"total": None})',)


class PropertiesNotMapping(Rule):
    """Attributes and properties are a dict of named values, never a list or a string."""

    code = "OCDP134"
    severity = "error"
    message = "attributes/properties must be a dict (or a registered dataclass/model)"
    silenceable = False
    bad = ('client.track("42", "order_placed", ["A1", 2])',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed", {"sku": "A1", "quantity": 2})',)


class AttributeLimits(Rule):
    """Customer.io's attribute limits: 300 attributes, names of 150 bytes, values of 1000.

    A limit of Customer.io alone: the call returns, OpenCDP gets the message, and only the
    Customer.io copy is dead-lettered with this code and the attribute's name (see
    ``client.dead_letters()``). A value's size is its UTF-8 bytes for text, its JSON for
    anything else.
    """

    code = "OCDP135"
    severity = "error"
    message = "attribute over Customer.io's limits (300 attributes, name 150 B, value 1000 B)"
    silenceable = False
    customerio_only = True
    bad = ('client.identify("42", {"email": "a@example.com", "bio": "x" * 1001})',
           'client.identify("42", {f"a{i}": i for i in range(301)})')
    good = ('client.identify("42", {"email": "a@example.com", "bio": "x" * 1000})',)


class EventDataTooLarge(Rule):
    """Customer.io refuses event data above 100,000 bytes (serialised).

    A limit of Customer.io alone: only the Customer.io copy is dead-lettered.
    """

    code = "OCDP136"
    severity = "error"
    message = "event data over 100,000 bytes; send ids and fetch details server-side"
    silenceable = False
    customerio_only = True
    bad = ('client.track("42", "report_built", {"rows": ["x" * 1000] * 101})',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "report_built", {"report_id": "r-981", "rows": 101})',)


class UnencodableText(Rule):
    """Text that is not valid Unicode: a lone surrogate such as ``"caf\\udce9"``.

    It comes from decoding bytes with ``surrogateescape`` (file names, ``os.environ``) or
    from slicing UTF-16 data. No UTF-8 encoder takes it, so it is refused at the call, in
    values and in keys, naming the path; decode the source bytes with the right codec.
    """

    code = "OCDP156"
    severity = "error"
    message = "text holds a lone surrogate (not valid Unicode); decode the source correctly"
    silenceable = False
    bad = ('client.track("42", "file_uploaded", {"name": "caf\\udce9.txt"})',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "file_uploaded", {"name": b"caf\\xc3\\xa9.txt".decode()})',)


class DataTooDeep(Rule):
    """Data nested more than 32 containers deep (or a container holding itself).

    Encoders stop at a recursion limit and no destination indexes such data, so it is refused
    at the call rather than failing later in a batch. Flatten it or send it as text.
    """

    code = "OCDP157"
    severity = "error"
    message = "data nested more than 32 levels deep; flatten it"
    silenceable = False
    bad = ('deep = {}\n'
           'node = deep\n'
           'for _ in range(40):\n'
           '    node["child"] = node = {}\n'
           'client.track("42", "tree_saved", {"tree": deep})',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "tree_saved", {"tree": {"child": {"child": {}}}})',)
