"""A backfill record, and the call it stands for.

A record is a dict in the NDJSON shape of ``opencdp import`` (docs/import.md)::

    {"type": "identify", "user_id": "42", "attributes": {...}, "timestamp": 1700000000}
    {"type": "track", "user_id": "42", "event": "order_placed", "properties": {...},
     "timestamp": 1700000000, "event_id": "01H..."}
    {"type": "device", "user_id": "42", "device_id": "d1", "platform": "ios",
     "apn_token": "..."}

and ``to_call`` turns one into the message a client call would queue, through the same
``Calls`` layer (so the same guards) as ``Client.identify``/``track``/``register_device``.
A record the guards refuse raises their ``ValidationError``, with its code; a record that
is no call at all (unknown type or field, a missing one) raises ``RecordError`` (OCDP351);
a Customer.io-only call when Customer.io is not a destination raises ``RecordError``
(OCDP352).

The message id is deterministic (``message_id``), so a record read again, by a re-run or
after a crash, is the same message to both platforms: Customer.io drops an event whose
``id`` it has, and OpenCDP sees the same ``Idempotency-Key``. It is ULID-shaped: 48 bits of
milliseconds, from the record's own (checked) timestamp, else 0, since the time of the import
changes between runs; and 80 bits from the source's identity plus the record's line, or
from a key the user names (``--key``), hashed with the record's type. A record that carries
its own ``event_id`` keeps it, as a call does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..calls import Calls, Queued
from ..errors import ConfigurationError
from ..message import OPENCDP

__all__ = [
    "DEVICE_FIELDS",
    "FIELDS",
    "RecordError",
    "key_base",
    "message_id",
    "namespace",
    "to_call",
]

_MASK80: Final = (1 << 80) - 1
_MAX_MS: Final = (1 << 48) - 1

DEVICE_FIELDS: Final = ("fcm_token", "apn_token", "name", "os_version", "model",
                        "app_version", "last_active_at", "last_used", "attributes")

FIELDS: Final[dict[str, frozenset[str]]] = {name: fields | {"type"} for name, fields in {
    "identify": frozenset({"user_id", "attributes", "timestamp", "anonymous_id",
                           "identifiers"}),
    "track": frozenset({"user_id", "anonymous_id", "identifiers", "event", "properties",
                        "timestamp", "event_id"}),
    "device": frozenset({"user_id", "device_id", "platform", *DEVICE_FIELDS}),
    "page": frozenset({"user_id", "identifiers", "url", "properties", "timestamp"}),
    "screen": frozenset({"user_id", "identifiers", "name", "properties", "timestamp"}),
    "suppress": frozenset({"user_id", "identifiers"}),
    "unsuppress": frozenset({"user_id", "identifiers"}),
    "object": frozenset({"object_type_id", "object_id", "attributes"}),
    "relationships": frozenset({"user_id", "identifiers", "objects"}),
}.items()}
"""The fields each record type may hold (besides ``type``). An unknown field is refused
rather than dropped: a misspelt ``atributes`` would otherwise import people without them."""


class RecordError(ValueError):
    """A record that is no call (OCDP351), or one the destinations cannot take (OCDP352)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code


def namespace(identity: str) -> int:
    """The 80-bit base of a source's ids, from its identity (``sources.SourceIdentity``)."""
    return int.from_bytes(hashlib.blake2b(identity.encode(), digest_size=10).digest(), "big")


def key_base(kind: str, key: str) -> int:
    """The 80-bit part of an id named by a key column: the same key and record type give the
    same id in any file, so two overlapping exports import each record once."""
    digest = hashlib.blake2b(f"{kind}\0{key}".encode("utf-8", "surrogatepass"),
                             digest_size=10).digest()
    return int.from_bytes(digest, "big")


def message_id(base: int, offset: int, ts: int | None) -> int:
    """``(ms << 80) | ((base + offset) mod 2**80)``: the ids of one source are distinct
    by construction, and two sources collide only by a chance of about n / 2**80."""
    ms = 0 if ts is None else min(max(ts, 0) * 1000, _MAX_MS)
    return (ms << 80) | ((base + offset) & _MASK80)


def _only_customerio(kind: str) -> RecordError:
    return RecordError("OCDP352", f"a {kind} record is a Customer.io call: import it with "
                                  "--to customerio or --to both")


def _who(record: Mapping[str, Any]) -> object:
    ids = record.get("identifiers")
    return ids if ids is not None else record.get("user_id")


def _identify(calls: Calls, r: Mapping[str, Any]) -> Queued:
    if r.get("user_id") is None and r.get("identifiers") is not None:
        return calls.identify_by(r["identifiers"], r.get("attributes"), r.get("timestamp"))
    return calls.identify(r.get("user_id"), r.get("attributes"), r.get("timestamp"),
                          r.get("anonymous_id"))


def _track(calls: Calls, r: Mapping[str, Any]) -> Queued:
    if r.get("user_id") is None:
        if r.get("identifiers") is not None:
            return calls.track_by(r["identifiers"], r.get("event"), r.get("properties"),
                                  r.get("timestamp"), r.get("event_id"))
        if r.get("anonymous_id") is not None:
            return calls.track_anonymous(r["anonymous_id"], r.get("event"),
                                         r.get("properties"), r.get("timestamp"),
                                         r.get("event_id"))
    return calls.track(r.get("user_id"), r.get("event"), r.get("properties"),
                       r.get("timestamp"), r.get("event_id"))


def _device(calls: Calls, r: Mapping[str, Any]) -> Queued:
    fields = {name: r.get(name) for name in DEVICE_FIELDS}
    return calls.register_device(r.get("user_id"), r.get("device_id"), r.get("platform"),
                                 fields)


_CALLS: Final[dict[str, Callable[[Calls, Mapping[str, Any]], Queued]]] = {
    "identify": _identify,
    "track": _track,
    "device": _device,
    "page": lambda c, r: c.view("page", _who(r), r.get("url"), r.get("properties"),
                                r.get("timestamp")),
    "screen": lambda c, r: c.view("screen", _who(r), r.get("name"), r.get("properties"),
                                  r.get("timestamp")),
    "suppress": lambda c, r: c.person_by("suppress", r["identifiers"])
    if r.get("identifiers") is not None else c.person("suppress", r.get("user_id")),
    "unsuppress": lambda c, r: c.person_by("unsuppress", r["identifiers"])
    if r.get("identifiers") is not None else c.person("unsuppress", r.get("user_id")),
    "object": lambda c, r: c.identify_object(r.get("object_type_id"), r.get("object_id"),
                                             r.get("attributes")),
    "relationships": lambda c, r: c.relationships("add_relationships", _who(r),
                                                  r.get("objects")),
}


def to_call(calls: Calls, record: Mapping[str, Any], base: int, offset: int,
            destinations: int) -> Queued:
    """The message ``record`` stands for, for ``destinations`` (``message.OPENCDP |
    CUSTOMERIO`` bits) and under its deterministic id (``message_id(base, offset, ts)``), or raise.

    ``calls`` belongs to a client whose engine has Customer.io on whenever ``destinations``
    includes it: the Customer.io-only calls check that, as they do for a caller.
    """
    given = record.get("type")
    kind = given if isinstance(given, str) else ""
    call = _CALLS.get(kind)
    if call is None:
        shown = repr(given)[:40] if isinstance(given, str) else type(given).__name__
        raise RecordError("OCDP351", f"type is {shown}; expected one of "
                                     f"{', '.join(sorted(_CALLS))}")
    unknown = record.keys() - FIELDS[kind]
    if unknown:
        names = sorted(str(k) for k in unknown)
        raise RecordError("OCDP351", f"a {kind} record has no field {', '.join(names)[:80]}")
    try:
        queued = call(calls, record)
    except ConfigurationError:
        # The Customer.io-only calls refuse a client without dual-write.
        raise _only_customerio(kind) from None
    message = queued[0]
    if not message.destinations & destinations:
        if message.destinations == OPENCDP:
            raise RecordError("OCDP352", f"this {kind} record goes to OpenCDP only (a web "
                                         "device); import it with --to opencdp or --to both")
        raise _only_customerio(kind)
    if queued[1] is None:  # no caller's event id: the deterministic one
        queued = Calls.with_message_id(queued, message_id(base, offset, message.ts))
        message = queued[0]
    if message.destinations & ~destinations:
        queued = message._replace(destinations=message.destinations & destinations), queued[1]
    return queued

