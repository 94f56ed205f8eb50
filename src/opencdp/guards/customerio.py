"""Customer.io's own limits, applied per message where only its copy pays for them.

OpenCDP has no such limits, so a message over one of them is still accepted at the call and
delivered to OpenCDP; the Customer.io encoder asks ``customerio_refusal`` about each message
and dead-letters only the Customer.io copy with the reason. The limits are those of the Track
API (``spec/customerio.md``, "Limits"): person ids of 150 bytes, attribute names of 150 bytes
and values of 1000 bytes, 300 attributes per identify, event names of 100 bytes and event data
of 100,000 bytes. The size of a v2 operation (32 KB) is the encoder's own check (OCDP308),
because only the encoder knows the operation's bytes.

The reason names the rule code, the field and the size, never a value.
"""

from __future__ import annotations

from typing import Final

import orjson

from ..message import Message
from .attributes import (
    MAX_ATTRIBUTES,
    MAX_EVENT_BYTES,
    MAX_NAME_BYTES,
    MAX_VALUE_BYTES,
    AttributeLimits,
    EventDataTooLarge,
)
from .events import CUSTOMERIO_MAX_BYTES as MAX_EVENT_NAME_BYTES
from .events import EventNameTooLong
from .identifiers import CUSTOMERIO_MAX_BYTES as MAX_PERSON_ID_BYTES
from .identifiers import IdentifierTooLong

__all__ = ["customerio_refusal"]

_PERSON_KINDS: Final = frozenset({"identify", "track", "add_device", "delete_device",
                                  "suppress", "unsuppress", "delete"})
_EVENT_KINDS: Final = frozenset({"track", "track_anonymous"})


def _bytes(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _value_bytes(value: object) -> int:
    if type(value) is str:
        return _bytes(value)
    return len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def _short(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."


def customerio_refusal(message: Message) -> str | None:
    """Why Customer.io would refuse ``message`` by a limit of its own (code first), or None.

    Pure and cheap for the common case: lengths are compared before anything is encoded.
    """
    kind = message.kind
    if kind in _PERSON_KINDS:
        ident = message.identifier
        if len(ident) > MAX_PERSON_ID_BYTES // 4 and _bytes(ident) > MAX_PERSON_ID_BYTES:
            return (f"{IdentifierTooLong.code} person id is {_bytes(ident)} bytes; "
                    f"Customer.io takes at most {MAX_PERSON_ID_BYTES}")
    data = message.data
    if kind in _EVENT_KINDS:
        name = message.name or ""
        if len(name) > MAX_EVENT_NAME_BYTES // 4 and _bytes(name) > MAX_EVENT_NAME_BYTES:
            return (f"{EventNameTooLong.code} event name is {_bytes(name)} bytes; "
                    f"Customer.io takes at most {MAX_EVENT_NAME_BYTES}")
        if data:
            size = len(orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS))
            if size > MAX_EVENT_BYTES:
                return (f"{EventDataTooLarge.code} event data is {size} bytes; "
                        f"Customer.io takes at most {MAX_EVENT_BYTES}")
    elif kind == "identify" and data:
        return _attributes(data)
    elif kind == "merge" and data:
        for side in ("primary", "secondary"):
            ids = data.get(side)
            side_id = ids.get("id") if isinstance(ids, dict) else None
            if isinstance(side_id, str) and _bytes(side_id) > MAX_PERSON_ID_BYTES:
                return (f"{IdentifierTooLong.code} {side}.id is {_bytes(side_id)} bytes; "
                        f"Customer.io takes at most {MAX_PERSON_ID_BYTES}")
    return None


def _attributes(attrs: object) -> str | None:
    if not isinstance(attrs, dict):
        return None
    if len(attrs) > MAX_ATTRIBUTES:
        return (f"{AttributeLimits.code} {len(attrs)} attributes; "
                f"Customer.io takes at most {MAX_ATTRIBUTES} per identify")
    for name, value in attrs.items():
        key = str(name)
        if len(key) > MAX_NAME_BYTES // 4 and _bytes(key) > MAX_NAME_BYTES:
            return (f"{AttributeLimits.code} attribute name {_short(key)!r} is {_bytes(key)} "
                    f"bytes; Customer.io takes at most {MAX_NAME_BYTES}")
        cls = type(value)
        if (cls is str and len(value) <= MAX_VALUE_BYTES // 4) or value is None \
                or cls is bool or cls is int or cls is float:
            continue
        size = _value_bytes(value)
        if size > MAX_VALUE_BYTES:
            return (f"{AttributeLimits.code} attributes.{_short(key)} is {size} bytes; "
                    f"Customer.io takes at most {MAX_VALUE_BYTES} per value")
    return None
