"""The envelope every call becomes, and the ULIDs that name it.

A ``Message`` is an immutable tuple built on the caller's thread: it must cost well under a
microsecond, so it holds the caller's data as given and is serialised once, on the dispatcher.
Its id is a ULID kept as a 128-bit integer; the 26-character text form is made only where it
goes on the wire (Customer.io's event ``id``) or into a durable outbox.

ULIDs are generated here rather than with a ULID library because the caller-cost budget of
``track()`` (a few microseconds) leaves no room for a per-call ``os.urandom`` and string
encoding. The scheme is the ULID spec's monotonic mode: a random 80-bit base drawn per process
(again after ``fork``), incremented by a lock-free counter, under the current millisecond.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, NamedTuple

import orjson

__all__ = [
    "CUSTOMERIO",
    "DESTINATION_BITS",
    "DESTINATION_NAMES",
    "IDENTIFIER_KINDS",
    "KINDS",
    "OPENCDP",
    "Kind",
    "Message",
    "dumps_message",
    "loads_message",
    "new_ulid",
    "parse_ulid",
    "split_kind",
    "ulid_str",
]

Kind = Literal[
    "identify",
    "track",
    "track_anonymous",
    "add_device",
    "delete_device",
    "suppress",
    "unsuppress",
    "delete",
    "merge",
    "page",
    "screen",
    "page_anonymous",
    "screen_anonymous",
    "add_relationships",
    "delete_relationships",
    "object_identify",
    "object_delete",
    "object_anonymous",
    "metric",
    "delivery_event",
    "unsubscribe",
    "segment_add",
    "segment_remove",
]
KINDS: Final[frozenset[str]] = frozenset(Kind.__args__)  # type: ignore[attr-defined]
IDENTIFIER_KINDS: Final = ("email", "cio_id", "phone")
"""A person call keyed by one of these instead of ``id`` has the kind ``"<call>:<key>"``
(``identify:email``): Customer.io-only, since the gateway addresses people by id alone."""


def split_kind(kind: str) -> tuple[str, str]:
    """``("identify", "email")`` for ``identify:email``; ``("track", "id")`` for ``track``."""
    base, _, key = kind.partition(":")
    return base, key or "id"

OPENCDP: Final = 1
CUSTOMERIO: Final = 2
DESTINATION_NAMES: Final[dict[int, str]] = {OPENCDP: "opencdp", CUSTOMERIO: "customerio"}
DESTINATION_BITS: Final[dict[str, int]] = {v: k for k, v in DESTINATION_NAMES.items()}


class Message(NamedTuple):
    """One call, as queued.

    ``identifier`` is the person (or anonymous id, the merge's primary, the object id, the
    delivery id or the segment id); ``name`` is the event name, device id, page URL, screen,
    object type id, metric or segment ``id_type``; ``data`` the attributes, properties or
    device fields; ``ts`` the event's Unix seconds, or None for "the time of the call" (read
    from the id, so only for ids this SDK minted: a call given a caller's event id always
    carries ``ts``). ``destinations`` is a bit set of ``OPENCDP | CUSTOMERIO``.
    """

    id: int
    kind: str
    identifier: str
    name: str | None
    data: Mapping[str, Any] | None
    ts: int | None
    destinations: int

    @property
    def ulid(self) -> str:
        return ulid_str(self.id)

    @property
    def created_ms(self) -> int:
        """Milliseconds since the epoch at which the call was made."""
        return self.id >> 80

    @property
    def timestamp(self) -> int:
        """The event time in Unix seconds: the explicit one, else the time of the call."""
        return self.ts if self.ts is not None else (self.id >> 80) // 1000

    def targets(self, destination: int) -> bool:
        return bool(self.destinations & destination)


_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE: Final = {c: i for i, c in enumerate(_ALPHABET)}
_MASK80: Final = (1 << 80) - 1


def _ulid_source() -> tuple[Callable[[], int], Callable[[], None]]:
    base = 0
    counter = itertools.count()
    time_ns = time.time_ns

    def reseed() -> None:
        nonlocal base, counter
        # Leave 2**79 increments of head-room below the 80-bit ceiling.
        base = int.from_bytes(os.urandom(10), "big") >> 1
        counter = itertools.count()

    def new_ulid() -> int:
        """Return a new ULID as an int: unique in this process and across forks,
        ordered by millisecond."""
        return ((time_ns() // 1_000_000) << 80) | (base + next(counter))

    reseed()
    return new_ulid, reseed


new_ulid, _reseed = _ulid_source()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed)


_PAIRS: Final = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_PAIR_SHIFTS: Final = tuple(range(120, -1, -10))


_LOW40: Final = (1 << 40) - 1
_head: list[tuple[int, str]] = [(-1, "")]  # one tuple, replaced whole: thread-safe


def ulid_str(value: int) -> str:
    """Encode a 128-bit ULID integer as its 26-character Crockford base32 text.

    It is on every call's path (calls return it), so the first 18 characters, which only
    change with the millisecond or the random base, are kept from the previous call, and
    the last 8 take four two-character lookups."""
    head = value >> 40
    cached, text = _head[0]
    if head != cached:
        text = "".join([_PAIRS[(value >> s) & 1023] for s in _PAIR_SHIFTS])[:18]
        _head[0] = (head, text)
    pairs = _PAIRS
    return (text + pairs[(value >> 30) & 1023] + pairs[(value >> 20) & 1023]
            + pairs[(value >> 10) & 1023] + pairs[value & 1023])


def parse_ulid(text: str) -> int:
    """Decode a 26-character ULID; raises ValueError if it is not one."""
    if len(text) != 26:
        raise ValueError(f"a ULID has 26 characters, got {len(text)}")
    value = 0
    try:
        for ch in text.upper():
            value = (value << 5) | _DECODE[ch]
    except KeyError:
        raise ValueError("a ULID uses Crockford base32 characters only") from None
    if value >> 128:
        raise ValueError("ULID out of range")
    return value


def dumps_message(message: Message) -> bytes:
    """Serialise for a durable outbox (the only place, besides encoders, that serialises)."""
    return orjson.dumps(
        [ulid_str(message.id), message.kind, message.identifier, message.name,
         message.data, message.ts, message.destinations],
        option=orjson.OPT_NON_STR_KEYS,
    )


def loads_message(raw: bytes | str) -> Message:
    ulid, kind, identifier, name, data, ts, destinations = orjson.loads(raw)
    return Message(parse_ulid(ulid), kind, identifier, name, data, ts, destinations)
