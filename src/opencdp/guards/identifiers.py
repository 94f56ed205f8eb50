"""Identifiers: the person id is the key every destination files data under.

An id must be present, short enough for every destination, and immutable: an email address or
phone number as the id creates a second person the day the user changes it. Customer.io also
reads an id's shape (``cio_...`` addresses its internal id, an email may address by email), and
puts the id in a URL path, so ids with spaces or control characters are a bug waiting to
happen.
"""

from __future__ import annotations

import re
from typing import Final

from ._core import Reporter, Rule
from .attributes import UnencodableText

__all__ = [
    "AmbiguousIdentifier",
    "EmailIdentifier",
    "EmptyIdentifier",
    "IdentifierTooLong",
    "PhoneIdentifier",
    "TrackBeforeIdentify",
    "check_identifier",
]

GATEWAY_MAX_CHARS: Final = 255
CUSTOMERIO_MAX_BYTES: Final = 150
EMAIL: Final = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
PHONE: Final = re.compile(r"\+?[1-9][\d\s().-]{6,18}\d")
_UNSAFE: Final = re.compile(r"[\x00-\x20\x7f]")


class EmptyIdentifier(Rule):
    """An empty or blank id (or one that is not a string or int) addresses nobody."""

    code = "OCDP110"
    severity = "error"
    message = "identifier is empty or not a string; pass your database's id for the person"
    silenceable = False
    bad = ('client.track("  ", "order_placed")',
           'client.identify(None, {"email": "a@example.com"})')
    good = ('client.identify("42", {"email": "a@example.com"})',
            'client.identify(42, {"email": "a@example.com"})')


class EmailIdentifier(Rule):
    """An email address as the person id changes when the user changes their email.

    The new address becomes a second person and the history stays with the first. The
    OpenCDP contract also says identifiers must not be email addresses. Send the email as
    the ``email`` attribute and use an immutable id.
    """

    code = "OCDP111"
    severity = "warning"
    message = "identifier looks like an email address; use an immutable database id"
    bad = ('client.identify("ada@example.com", {"email": "ada@example.com"})',)
    good = ('client.identify("42", {"email": "ada@example.com"})',)


class PhoneIdentifier(Rule):
    """A phone number as the person id is mutable, and Customer.io reads it as a plain id."""

    code = "OCDP112"
    severity = "warning"
    message = "identifier looks like a phone number; use an immutable id, phone as an attribute"
    bad = ('client.identify("+44 20 7946 0958", {"email": "a@example.com"})',)
    good = ('client.identify("42", {"email": "a@example.com", "phone": "+442079460958"})',
            'client.identify("1234", {"email": "a@example.com"})')


class IdentifierTooLong(Rule):
    """Ids longer than a destination allows are refused there, after the call returned.

    The gateway caps ids at 255 characters: a longer one is refused at the call. Customer.io
    caps person ids at 150 bytes: a longer one (up to 255 characters) still reaches OpenCDP,
    and only its Customer.io copy is dead-lettered with this code.
    """

    code = "OCDP113"
    severity = "error"
    message = "identifier is too long (gateway: 255 characters, Customer.io: 150 bytes)"
    silenceable = False
    bad = ('client.identify("u" * 256, {"email": "a@example.com"})',
           'client.identify("u" * 151, {"email": "a@example.com"})')
    good = ('client.identify("u" * 150, {"email": "a@example.com"})',)


class AmbiguousIdentifier(Rule):
    """An id with whitespace or control characters, or one starting with ``cio_``.

    Such ids usually come from string formatting bugs; ``cio_`` ids are read by Customer.io as
    its own internal id and address a different person.
    """

    code = "OCDP114"
    severity = "warning"
    message = "identifier has whitespace/control characters or a cio_ prefix; use a plain id"
    bad = ('client.identify("user 42", {"email": "a@example.com"})',
           'client.identify("cio_42", {"email": "a@example.com"})')
    good = ('client.identify("user-42", {"email": "a@example.com"})',)


class TrackBeforeIdentify(Rule):
    """An event for a person this process has not identified.

    Customer.io files the event under a person who may not exist yet (no email, no
    attributes), so campaigns triggered by it cannot reach them. Identify first, or use
    ``track_anonymous`` and merge with ``identify(..., anonymous_id=...)`` later. Another
    process (a web worker, the signup service) may well have identified the person, so this is
    a hint about the process, not a verdict about a call: logged once per process, counted on
    every occurrence (``health().guards``), and never refused in strict mode. Processes that
    only track can silence it.
    """

    code = "OCDP115"
    severity = "warning"
    strict = False
    once = True
    message = "track before identify in this process; call identify(user_id, ...) first"
    bad = ('client.track("42", "order_placed")',)
    good = ('client.identify("42", {"email": "a@example.com"})\n'
            'client.track("42", "order_placed")',
            'client.track_anonymous("anon-7f3a", "page_viewed")')


def check_identifier(value: object, field: str, reporter: Reporter, shape: bool = True) -> str:
    """Validate and normalise (trim; ints become text) an identifier, or raise.

    ``shape`` warns about ids that look like emails or phone numbers (off where an email is
    the point, as in a merge side keyed by ``email``). Warnings are reported per field, never
    per id: a bulk run over many ids makes one line.
    """
    kind = type(value)  # not isinstance: a mock claiming to be a str is not one
    if issubclass(kind, str):
        text = str.strip(value)  # type: ignore[arg-type]
    elif issubclass(kind, int) and kind is not bool:
        text = str(int.__int__(value))  # type: ignore[arg-type]
    else:
        raise reporter.refuse(EmptyIdentifier, field, f"{field} is {type(value).__name__}")
    if not text:
        raise reporter.refuse(EmptyIdentifier, field, f"{field} is empty")
    if len(text) > GATEWAY_MAX_CHARS:
        raise reporter.refuse(IdentifierTooLong, field, f"{field} has {len(text)} characters")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise reporter.refuse(UnencodableText, field, f"{field} has a lone surrogate"
                                  ) from None
    if not shape:
        return text
    if "@" in text and EMAIL.fullmatch(text):
        reporter.warn(EmailIdentifier, field, field, f"{field} is an email address")
    elif text[0] in "+0123456789" and PHONE.fullmatch(text) and not text.isdigit():
        reporter.warn(PhoneIdentifier, field, field, f"{field} is a phone number")
    elif _UNSAFE.search(text) or text.startswith("cio_"):
        reporter.warn(AmbiguousIdentifier, field, field, f"{field} needs care")
    return text
